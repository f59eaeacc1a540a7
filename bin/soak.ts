#!/usr/bin/env node
/**
 * `npm run soak`: an echo server and a few hundred CometClients on loopback, under faults, for a
 * while; then it counts. The server runs in this process (so the faults can be aimed and every
 * session's fate is known) on 127.0.0.1, an ephemeral port kept across its restart.
 *
 * Faults, all at once, until the end of the run:
 * - one connection FSM crash every `--fault-every` ms (the `fault` option, aimed at a random
 *   live session, poked with a packet so it fires now);
 * - the sockets of a random session's requests destroyed server-side (`dropHeldPoll`) every
 *   DROP_EVERY_MS, and a share of client requests aborted client-side after a few ms: both make
 *   the client retransmit the same rid;
 * - the server closed and started again on the same port once, half-way: every session ends
 *   (`shutdown`), every client reconnects.
 *
 * Each client sends tagged strings (`c<client>#<n>`) and the server echoes each message back to
 * the session that received it. At the end (sending stops, faults stop, the echoes drain) it
 * prints sent, accepted, delivered, lost within live sessions, in ended sessions, duplicated,
 * re-sent after a session ended and peak RSS (see docs/reliability.md for the definitions), and
 * exits 1 if anything was lost within a live session, duplicated, or never settled.
 *
 * Usage: node dist/bin/soak.js [--duration S] [--clients N] [--fault-every MS] [--json]
 */
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { CometClient, type FetchLike } from '../lib/client/index.js';
import { createCometServer, type CometServer, type SessionEndReason, type Sid } from '../lib/index.js';
import type { Logger } from '../lib/otp/logger.js';

/** How many lost or duplicated messages the report describes. */
const MAX_SAMPLES = 10;
/** How long the load runs (s), faults included; the drain comes after. */
export const DEFAULT_DURATION_S = 60;
/** How many CometClients. */
export const DEFAULT_CLIENTS = 300;
/** One connection FSM crash this often (ms). */
export const DEFAULT_FAULT_EVERY_MS = 2000;
/** Each client sends one message every this many ms on average (uniform in 0..2x). */
export const SEND_EVERY_MS = 1000;
/** One session's in-flight requests have their sockets destroyed server-side this often (ms). */
export const DROP_EVERY_MS = 250;
/** Share of client requests aborted client-side 0-50 ms after they start. */
export const CLIENT_ABORT_SHARE = 0.02;
/** After the load stops: how long every accepted message has to come back (ms). */
export const DRAIN_TIMEOUT_MS = 20_000;
/** The server's timings: long enough for a poll cycle, short enough to see sessions turn over. */
export const SOAK_WAIT_MS = 10_000;
export const SOAK_INACTIVITY_MS = 15_000;

export interface SoakOptions {
  readonly durationS: number;
  readonly clients: number;
  readonly faultEveryMs: number;
  /** Progress lines (one every 5 s); default none. */
  readonly progress?: (line: string) => void;
}

export interface SoakReport {
  readonly durationS: number;
  readonly clients: number;
  /** `send()` calls. */
  readonly sent: number;
  /** Sends that resolved: the server accepted the request that carried them. */
  readonly accepted: number;
  /** Accepted messages whose echo reached the client. */
  readonly delivered: number;
  /** Accepted by a session still alive at the end, and its echo never arrived: must be 0. */
  readonly lostInLiveSessions: number;
  /** Accepted, never echoed, and every session that accepted it has ended (crash, restart). */
  readonly inEndedSessions: number;
  /** Received twice by the application, or echoed twice to the client, within one session: must be 0. */
  readonly duplicated: number;
  /** Accepted by two sessions: the first ended before its answer reached the client, which re-sent it. */
  readonly resentAfterSessionEnded: number;
  /** Sends neither resolved nor rejected when the drain ended: must be 0. */
  readonly unsettled: number;
  /** Sends that rejected (none expected: the clients reconnect and retry for ever). */
  readonly rejected: number;
  readonly fsmCrashes: number;
  readonly serverRestarts: number;
  /** Sessions the clients opened (`open` events). */
  readonly sessionsOpened: number;
  /** Sessions the server set up whose setup answer never reached a client (aborted): they end by inactivity. */
  readonly orphanSessions: number;
  readonly sessionsEnded: Readonly<Record<SessionEndReason, number>>;
  /** Client attempts that failed and were retried, by code (network, timeout, http_status, ...). */
  readonly retries: Readonly<Record<string, number>>;
  readonly socketsDropped: number;
  readonly requestsAborted: number;
  /** Data on either side that was none of the soak's tags: must be 0. */
  readonly strays: number;
  readonly peakRssBytes: number;
  /** The first few lost or duplicated messages and what happened to their sessions (to debug a failed run). */
  readonly samples: readonly string[];
  readonly ok: boolean;
}

interface Message {
  settled: boolean;
  accepted: boolean;
  rejected: boolean;
  /** The client's session when its send resolved. */
  resolvedOn: Sid | null;
  /** Sessions whose onMessage received it, in order. */
  readonly acceptedBy: Sid[];
  /** Sessions on which its echo reached the client, in order. */
  readonly echoedOn: Sid[];
}

/** What happened to every message and session: the soak's books. */
class Ledger {
  readonly messages = new Map<string, Message>();
  readonly ended = new Map<Sid, SessionEndReason>();
  readonly retries: Record<string, number> = {};
  sessionsOpened = 0;
  serverSessions = 0;
  socketsDropped = 0;
  requestsAborted = 0;
  serverRestarts = 0;
  /** Fatal client errors, as text. */
  readonly notes: string[] = [];
  /** Data that was not one of our tags (a bug if it ever shows). */
  strays = 0;

  sent(tag: string): Message {
    const m: Message = { settled: false, accepted: false, rejected: false, resolvedOn: null, acceptedBy: [], echoedOn: [] };
    this.messages.set(tag, m);
    return m;
  }

  serverGot(sid: Sid, data: unknown): void {
    const m = typeof data === 'string' ? this.messages.get(data) : undefined;
    if (m) m.acceptedBy.push(sid);
    else this.strays++;
  }

  clientGot(sid: Sid, data: unknown): void {
    const m = typeof data === 'string' ? this.messages.get(data) : undefined;
    if (m) m.echoedOn.push(sid);
    else this.strays++;
  }

  describe(tag: string, m: Message): string {
    const fate = (s: Sid | null): string => (s === null ? 'none' : `${s} (${this.ended.get(s) ?? 'alive'})`);
    return `${tag}: resolved on ${fate(m.resolvedOn)}; received by [${m.acceptedBy.map(fate).join(', ')}]; echoed on [${m.echoedOn.map(fate).join(', ')}]`;
  }

  /** Every message settled, and every accepted one either echoed or gone with its sessions. */
  drained(): boolean {
    for (const m of this.messages.values()) {
      if (!m.settled) return false;
      if (m.accepted && m.echoedOn.length === 0 && m.acceptedBy.some((s) => !this.ended.has(s))) return false;
    }
    return true;
  }

  report(opts: SoakOptions, peakRssBytes: number): SoakReport {
    let accepted = 0, delivered = 0, lost = 0, inEnded = 0, duplicated = 0, resent = 0, unsettled = 0, rejected = 0;
    const samples: string[] = [...this.notes];
    for (const [tag, m] of this.messages) {
      if (!m.settled) unsettled++;
      if (m.rejected) rejected++;
      const twice = m.acceptedBy.length - new Set(m.acceptedBy).size + m.echoedOn.length - new Set(m.echoedOn).size;
      duplicated += twice;
      if (twice > 0 && samples.length < MAX_SAMPLES) samples.push(this.describe(tag, m));
      if (new Set(m.acceptedBy).size > 1) resent++;
      if (!m.accepted) continue;
      accepted++;
      if (m.echoedOn.length > 0) delivered++;
      // Per accepting session: a live one owes its echo. A send that resolved with no session
      // having received it is a loss too (it cannot happen unless the server lies).
      const owing = m.acceptedBy.filter((s) => !this.ended.has(s) && !m.echoedOn.includes(s));
      if (owing.length > 0 || m.acceptedBy.length === 0) {
        lost++;
        if (samples.length < MAX_SAMPLES) samples.push(this.describe(tag, m));
      } else if (m.echoedOn.length === 0) {
        inEnded++;
      }
    }
    const sessionsEnded: Record<SessionEndReason, number> = { terminate: 0, inactivity: 0, shutdown: 0, crash: 0 };
    for (const r of this.ended.values()) sessionsEnded[r]++;
    return {
      durationS: opts.durationS, clients: opts.clients,
      sent: this.messages.size, accepted, delivered,
      lostInLiveSessions: lost, inEndedSessions: inEnded, duplicated, resentAfterSessionEnded: resent,
      unsettled, rejected,
      fsmCrashes: sessionsEnded.crash, serverRestarts: this.serverRestarts,
      sessionsOpened: this.sessionsOpened, orphanSessions: this.serverSessions - this.sessionsOpened, sessionsEnded, retries: { ...this.retries },
      socketsDropped: this.socketsDropped, requestsAborted: this.requestsAborted,
      strays: this.strays, peakRssBytes, samples,
      ok: lost === 0 && duplicated === 0 && unsettled === 0 && this.strays === 0,
    };
  }
}

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const pick = <T>(xs: readonly T[]): T | undefined => xs[Math.floor(Math.random() * xs.length)];

/** The echo server, with its hooks feeding the ledger and a fault aimed by `armed`. */
async function startEcho(ledger: Ledger, port: number, armed: { sid: Sid | undefined }): Promise<CometServer> {
  const self: { comet?: CometServer } = {};
  const comet = await createCometServer({
    wait: SOAK_WAIT_MS,
    inactivity: SOAK_INACTIVITY_MS,
    // Every soak client is on 127.0.0.1 and they all set up again after each restart.
    maxSessionsPerClient: 0,
    setupRatePerClient: 0,
    logger: silent,
    onMessage(sid, data) {
      ledger.serverGot(sid, data);
      // A refusal here (the session just crashed) shows up in the books as "in ended sessions";
      // an `overloaded` one would show as lost, as it should.
      self.comet?.handlePacket(sid, data).catch(() => {});
    },
    onSession() {
      ledger.serverSessions++;
    },
    onSessionEnd(sid, reason) {
      ledger.ended.set(sid, reason);
    },
    fault(sid) {
      if (sid !== armed.sid) return false;
      armed.sid = undefined;
      return true;
    },
  });
  self.comet = comet;
  await comet.listen(port, '127.0.0.1');
  return comet;
}

/**
 * Run the soak; resolves with the report once every client and the server are closed.
 * @example
 * const report = await runSoak({ durationS: 15, clients: 100, faultEveryMs: 2000 });
 * if (!report.ok) process.exitCode = 1;
 */
export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const ledger = new Ledger();
  const armed: { sid: Sid | undefined } = { sid: undefined };
  let faulting = true;
  let peakRss = process.memoryUsage.rss();
  const rssTimer = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }, 100);

  let server = await startEcho(ledger, 0, armed);
  const port = server.httpServer?.address();
  if (typeof port !== 'object' || port === null) throw new Error('soak: the server has no address');
  const url = `http://127.0.0.1:${port.port}/comet`;

  const abortingFetch: FetchLike = (u, init) => {
    if (!faulting || Math.random() >= CLIENT_ABORT_SHARE) return globalThis.fetch(u, init);
    ledger.requestsAborted++;
    const cut = new AbortController();
    const timer = setTimeout(() => cut.abort(), Math.random() * 50);
    return globalThis.fetch(u, { ...init, signal: AbortSignal.any([init.signal, cut.signal]) }).finally(() => clearTimeout(timer));
  };

  const clients = Array.from({ length: opts.clients }, () => {
    const c = new CometClient(url, { reconnect: true, retryBaseMs: 50, retryCapMs: 1000, fetch: abortingFetch });
    c.on('open', () => ledger.sessionsOpened++);
    c.on('message', ({ sid, data }) => ledger.clientGot(sid, data));
    c.on('error', (err) => {
      // The server's code says which refusal it was (bad_rid, overloaded, shutting_down...).
      const key = err.serverCode === undefined ? err.code : `${err.code}:${err.serverCode}`;
      ledger.retries[key] = (ledger.retries[key] ?? 0) + 1;
      // A refusal the client cannot retry closes it: say which, for whoever debugs the run.
      if (err.code === 'protocol' && ledger.notes.length < MAX_SAMPLES) ledger.notes.push(`client refused: ${err.message} (status ${String(err.status)}, ${String(err.serverCode)})`);
    });
    return c;
  });
  await Promise.all(clients.map((c) => c.connect()));

  const started = Date.now();
  const endAt = started + opts.durationS * 1000;
  const sends: Promise<void>[] = [];
  const senders = clients.map(async (c, i) => {
    for (let n = 0; Date.now() < endAt; n++) {
      await sleep(Math.random() * 2 * SEND_EVERY_MS);
      if (Date.now() >= endAt) break;
      const tag = `c${i}#${n}`;
      const m = ledger.sent(tag);
      sends.push(c.send(tag).then(
        () => { m.accepted = true; m.settled = true; m.resolvedOn = c.sid; },
        () => { m.rejected = true; m.settled = true; },
      ));
    }
  });

  const faults = (async () => {
    let nextFault = Date.now() + opts.faultEveryMs;
    let restarted = false;
    while (Date.now() < endAt) {
      await sleep(DROP_EVERY_MS);
      const live = server.sessions();
      const victim = pick(live);
      if (victim !== undefined) ledger.socketsDropped += server.dropHeldPoll(victim);
      if (Date.now() >= nextFault) {
        nextFault += opts.faultEveryMs;
        armed.sid = pick(live);
        if (armed.sid !== undefined) server.handlePacket(armed.sid, 'poke').catch(() => {});
      }
      if (!restarted && Date.now() >= started + (opts.durationS * 1000) / 2) {
        restarted = true;
        opts.progress?.('restarting the server');
        await server.close();
        server = await startEcho(ledger, port.port, armed);
        ledger.serverRestarts++;
      }
    }
  })();

  const progress = setInterval(() => {
    const r = ledger.report(opts, peakRss);
    opts.progress?.(`${Math.round((Date.now() - started) / 1000)} s: sent ${r.sent}, delivered ${r.delivered}, crashes ${r.fsmCrashes}, sessions ${server.sessions().length}`);
  }, 5000);

  await Promise.all([...senders, faults]);
  faulting = false;
  armed.sid = undefined;
  opts.progress?.('load stopped; draining');
  const drainUntil = Date.now() + DRAIN_TIMEOUT_MS;
  while (!ledger.drained() && Date.now() < drainUntil) await sleep(100);
  clearInterval(progress);
  clearInterval(rssTimer);
  const report = ledger.report(opts, peakRss);

  // Counted; now tidy up. Sends still pending (a failed run) are rejected by close().
  await Promise.all(clients.map((c) => c.close()));
  await Promise.allSettled(sends);
  await server.close();
  return report;
}

/** The report as a person reads it. */
export function formatReport(r: SoakReport): string {
  const mb = (b: number): string => `${Math.round(b / 1024 / 1024)} MB`;
  const row = (label: string, v: number | string, note = ''): string => `  ${label.padEnd(30)} ${String(v).padStart(8)}${note ? `  ${note}` : ''}`;
  return [
    `soak: ${r.durationS} s, ${r.clients} clients, ${r.fsmCrashes} FSM crashes, ${r.serverRestarts} server restart(s), ${r.socketsDropped} sockets dropped, ${r.requestsAborted} requests aborted`,
    row('messages sent', r.sent),
    row('accepted (send resolved)', r.accepted),
    row('delivered (echo came back)', r.delivered),
    row('lost within live sessions', r.lostInLiveSessions, 'must be 0'),
    row('in ended sessions', r.inEndedSessions, 'echo queued in a session that crashed or was shut down'),
    row('duplicated', r.duplicated, 'must be 0 (twice within one session)'),
    row('re-sent after a session ended', r.resentAfterSessionEnded, 'accepted by the old session and the new'),
    row('unsettled at the end', r.unsettled, 'must be 0'),
    row('rejected sends', r.rejected),
    ...(r.strays > 0 ? [row('stray data', r.strays, 'must be 0: data that was none of the tags')] : []),
    row('sessions opened by clients', r.sessionsOpened),
    row('orphan sessions', r.orphanSessions, 'set up, but the answer was aborted: they end by inactivity'),
    row('sessions ended', Object.values(r.sessionsEnded).reduce((a, b) => a + b, 0), Object.entries(r.sessionsEnded).map(([k, v]) => `${k} ${v}`).join(', ')),
    row('client retries', Object.values(r.retries).reduce((a, b) => a + b, 0), Object.entries(r.retries).map(([k, v]) => `${k} ${v}`).join(', ')),
    row('peak RSS (server + clients)', mb(r.peakRssBytes)),
    ...r.samples.map((x) => `  ${x}`),
    r.ok ? 'PASS' : 'FAIL: messages lost within live sessions, duplicated, or unsettled',
  ].join('\n');
}

const USAGE = `Usage: soak [--duration S] [--clients N] [--fault-every MS] [--json]
  --duration S       how long the load runs (default ${DEFAULT_DURATION_S})
  --clients N        how many CometClients (default ${DEFAULT_CLIENTS})
  --fault-every MS   one connection FSM crash this often (default ${DEFAULT_FAULT_EVERY_MS})
  --json             print the report as one JSON line after the table
Exit status: 0 if nothing was lost within a live session, duplicated or left unsettled; 1 otherwise.`;

function positiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) {
    process.stderr.write(`--${name} must be a positive integer, got ${JSON.stringify(raw)}\n\n${USAGE}\n`);
    process.exit(2);
  }
  return n;
}

async function main(argv: readonly string[]): Promise<void> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      duration: { type: 'string' }, clients: { type: 'string' }, 'fault-every': { type: 'string' },
      json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const opts: SoakOptions = {
    durationS: positiveInt('duration', values.duration, DEFAULT_DURATION_S),
    clients: positiveInt('clients', values.clients, DEFAULT_CLIENTS),
    faultEveryMs: positiveInt('fault-every', values['fault-every'], DEFAULT_FAULT_EVERY_MS),
    progress: (line) => process.stderr.write(`soak: ${line}\n`),
  };
  const report = await runSoak(opts);
  process.stdout.write(`${formatReport(report)}\n`);
  if (values.json === true) process.stdout.write(`${JSON.stringify({ soak: report })}\n`);
  process.exitCode = report.ok ? 0 : 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`soak failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
