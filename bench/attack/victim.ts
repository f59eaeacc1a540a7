/**
 * The victim process: a few ordinary clients on 127.0.0.1 that keep setting up sessions, echoing
 * a message five times and terminating, one request at a time with a pause between, and that time
 * every request. Started by bench/attack/run.ts over IPC; exits when the orchestrator goes away.
 */
import { LogHistogram } from '../loadgen/histogram.js';
import { codeOf, messagesBody, pollBody, SETUP, sidOf } from './bodies.js';
import { AttackError, post, RawConn, type RawResponse } from './raw.js';
import {
  VICTIM_ECHOES_PER_SESSION,
  VICTIM_PAUSE_MS,
  VICTIM_TIMEOUT_MS,
  type FromVictim,
  type ToVictim,
  type VictimStats,
} from './victim-handle.js';

const PATH = '/comet';
const hist = new LogHistogram();
let ok = 0;
let failures: Record<string, number> = {};

const fail = (why: string): void => {
  failures[why] = (failures[why] ?? 0) + 1;
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Session {
  readonly sid: string;
  rid: number;
  ack: number;
  echoes: number;
}

/** Packets of an answer: their seqs and data. */
const packetsOf = (body: string): { seq: number; data: unknown }[] => {
  try {
    const v = JSON.parse(body) as { packets?: unknown };
    return Array.isArray(v.packets) ? (v.packets as { seq: number; data: unknown }[]) : [];
  } catch {
    return [];
  }
};

/** One victim client, for ever. */
const client = async (i: number, init: Extract<ToVictim, { type: 'init' }>): Promise<void> => {
  let conn = new RawConn('127.0.0.1', init.port, init.localAddress);
  let s: Session | null = null;
  let n = 0;
  const message = (tag: string): unknown => (init.kind === 'chat' ? { type: 'say', nick: 'victim', text: tag } : tag);
  const isEcho = (data: unknown, tag: string): boolean =>
    init.kind === 'chat' ? typeof data === 'object' && data !== null && (data as { text?: unknown }).text === tag : data === tag;

  /** One request, timed against `deadline`; null (and counted as failed) unless it is a 200. */
  const call = async (body: string, deadline: number): Promise<RawResponse | null> => {
    try {
      const r = await conn.request(post(PATH, body, `127.0.0.1:${init.port}`), Math.max(1, deadline - performance.now()));
      if (r.status === 200) return r;
      fail(codeOf(r.status, r.body));
    } catch (e) {
      fail(e instanceof AttackError ? e.code.replace('ATTACK_', '').toLowerCase() : 'error');
      // A timed-out socket is mid-answer; start on a fresh one.
      conn.destroy();
      conn = new RawConn('127.0.0.1', init.port, init.localAddress);
    }
    return null;
  };

  for (;;) {
    const t0 = performance.now();
    const deadline = t0 + VICTIM_TIMEOUT_MS;
    if (s === null) {
      const r = await call(SETUP, deadline);
      const sid = r === null ? null : sidOf(r.body);
      if (sid !== null) {
        s = { sid, rid: 0, ack: 0, echoes: 0 };
        ok++;
        hist.add((performance.now() - t0) * 1000);
      }
    } else if (s.echoes >= VICTIM_ECHOES_PER_SESSION) {
      const r = await call(JSON.stringify({ type: 'terminate', sid: s.sid, rid: ++s.rid, ack: s.ack }), deadline);
      if (r !== null) {
        ok++;
        hist.add((performance.now() - t0) * 1000);
      }
      s = null;
    } else {
      // The echo comes back in the answer to the request carrying it (the echo server pushes in
      // place) or, behind other packets (the chat's broadcasts), in a later poll.
      const tag = `v${i}-${++n}`;
      let body = messagesBody(s.sid, ++s.rid, s.ack, [message(tag)]);
      let got = false;
      while (!got) {
        const r = await call(body, deadline);
        if (r === null) break;
        for (const p of packetsOf(r.body)) {
          if (p.seq <= s.ack) continue;
          s.ack = p.seq;
          if (isEcho(p.data, tag)) got = true;
        }
        if (!got) body = pollBody(s.sid, ++s.rid, s.ack);
      }
      if (got) {
        ok++;
        s.echoes++;
        hist.add((performance.now() - t0) * 1000);
      } else {
        s = null; // its state is unknown now: a fresh session next time
      }
    }
    await sleep(VICTIM_PAUSE_MS);
  }
};

const stats = (): VictimStats => {
  const failed = Object.values(failures).reduce((a, b) => a + b, 0);
  const out: VictimStats = {
    ok,
    failed,
    failures,
    p50: hist.percentile(0.5) / 1000,
    p99: hist.percentile(0.99) / 1000,
    max: hist.percentile(1) / 1000,
  };
  hist.reset();
  ok = 0;
  failures = {};
  return out;
};

process.on('disconnect', () => process.exit(0));
process.on('message', (m: ToVictim) => {
  switch (m.type) {
    case 'init':
      for (let i = 0; i < m.clients; i++) void client(i, m);
      return;
    case 'mark':
      process.send?.({ type: 'stats', stats: stats() } satisfies FromVictim);
      return;
  }
});
