/**
 * The benchmark cases of issue 6 and how one of them runs against one fresh server process.
 * Every wait has a timeout and every loop a bound in count and in time.
 */
import { LogHistogram } from './loadgen/histogram.js';
import { Rig, ms, sampleRss, sleep, waitHeld, type CaseContext } from './rig.js';
import { freePort, startServer, type RunningServer, type ServerSpec } from './server-proc.js';

export type { CaseContext } from './rig.js';

/** One case; `name` is what tables and JSON lines call it. */
export type CaseSpec =
  | { readonly kind: 'idle'; readonly name: string; readonly sessions: number }
  | {
      readonly kind: 'fanout-closed';
      readonly name: string;
      readonly sessions: number;
      readonly warmupBroadcasts: number;
      readonly durationMs: number;
    }
  | {
      readonly kind: 'fanout-open';
      readonly name: string;
      readonly sessions: number;
      readonly broadcasts: number;
      readonly intervalMs: number;
    }
  | {
      readonly kind: 'echo';
      readonly name: string;
      readonly clients: number;
      readonly warmupMs: number;
      readonly durationMs: number;
    };

/** The kinds of case; each has its own figures. */
export type CaseKind = CaseSpec['kind'];

/** The full suite, sizes as issue 6 lists them. */
export const FULL_CASES: readonly CaseSpec[] = [
  { kind: 'idle', name: 'idle-1k', sessions: 1_000 },
  { kind: 'idle', name: 'idle-10k', sessions: 10_000 },
  { kind: 'idle', name: 'idle-19k', sessions: 19_000 },
  { kind: 'fanout-closed', name: 'fanout-closed-2k', sessions: 2_000, warmupBroadcasts: 20, durationMs: 5_000 },
  { kind: 'fanout-open', name: 'fanout-open-10k', sessions: 10_000, broadcasts: 10, intervalMs: 1_000 },
  { kind: 'echo', name: 'echo-20', clients: 20, warmupMs: 1_000, durationMs: 5_000 },
  { kind: 'echo', name: 'echo-200', clients: 200, warmupMs: 1_000, durationMs: 5_000 },
];

/** `--quick`: a smoke test that every server answers, in well under a minute. */
export const QUICK_CASES: readonly CaseSpec[] = [
  { kind: 'idle', name: 'idle-1k', sessions: 1_000 },
  { kind: 'fanout-closed', name: 'fanout-closed-2k', sessions: 2_000, warmupBroadcasts: 5, durationMs: 1_500 },
  { kind: 'echo', name: 'echo-200', clients: 200, warmupMs: 500, durationMs: 1_500 },
];

/** A closed loop stops after this many broadcasts even if time is left. */
export const MAX_BROADCASTS = 100_000;
/** An echo case stops after this many round trips even if time is left. */
export const MAX_ROUND_TRIPS = 10_000_000;
/** How long every live session may take to receive one broadcast (ms). */
export const BROADCAST_TIMEOUT_MS = 10_000;


/** What one case run measured; `answered` is false when the server never served a session. */
export interface CaseResult {
  readonly answered: boolean;
  readonly figures: Record<string, number>;
  readonly error?: string;
  /** Something the reader should know though the server answered (why some setups failed). */
  readonly note?: string;
}

const idle = async (rig: Rig, c: Extract<CaseSpec, { kind: 'idle' }>, f: Record<string, number>): Promise<void> => {
  const pid = rig.server.pid;
  await sleep(300);
  const base = await sampleRss(pid, 3, 100);
  await rig.spawn(c.sessions);
  const m = rig.meters();
  m.start();
  const t0 = performance.now();
  const opened = await rig.open(c.sessions);
  if (opened.ok === 0) throw new Error(`no session could be set up: ${opened.firstError}`);
  const stats = await waitHeld(rig.admin, opened.ok, 30_000);
  f.establish_s = (performance.now() - t0) / 1000;
  m.stop(f);
  await sleep(500);
  const loaded = await sampleRss(pid, 5, 200);
  const rep = await rig.report();
  f.sessions = stats.sessions;
  f.held = stats.held;
  f.errors = opened.failed + rep.errors + Math.max(0, opened.ok - stats.held);
  f.base_rss_mib = base / 1024;
  f.rss_mib = loaded / 1024;
  f.rss_per_session_kib = (loaded - base) / Math.max(1, stats.held);
};

const fanoutClosed = async (
  rig: Rig,
  c: Extract<CaseSpec, { kind: 'fanout-closed' }>,
  f: Record<string, number>,
): Promise<void> => {
  const opened = await rig.open(c.sessions);
  if (opened.ok === 0) throw new Error(`no session could be set up: ${opened.firstError}`);
  await waitHeld(rig.admin, opened.ok, 30_000);
  rig.fanout();
  let n = 0;
  let timeouts = 0;
  const once = async (): Promise<boolean> => {
    const k = ++n;
    const all = rig.waitGot(k, BROADCAST_TIMEOUT_MS);
    await rig.broadcast(k);
    if (await all) return true;
    timeouts++;
    return false;
  };
  for (let i = 0; i < c.warmupBroadcasts; i++) if (!(await once())) break;
  await rig.reset();
  const m = rig.meters();
  m.start();
  const t0 = performance.now();
  let done = 0;
  while (performance.now() - t0 < c.durationMs && done < MAX_BROADCASTS && timeouts === 0) {
    if (await once()) done++;
  }
  const seconds = (performance.now() - t0) / 1000;
  m.stop(f);
  const rep = await rig.report();
  f.sessions = opened.ok;
  f.broadcasts = done;
  f.deliveries_per_s = rep.deliveries / seconds;
  f.p50_ms = ms(rep.hist.percentile(0.5));
  f.p99_ms = ms(rep.hist.percentile(0.99));
  f.errors = opened.failed + rep.errors + timeouts;
  if (done === 0) throw new Error('no broadcast reached every session');
};

const fanoutOpen = async (
  rig: Rig,
  c: Extract<CaseSpec, { kind: 'fanout-open' }>,
  f: Record<string, number>,
): Promise<void> => {
  const opened = await rig.open(c.sessions);
  if (opened.ok === 0) throw new Error(`no session could be set up: ${opened.firstError}`);
  await waitHeld(rig.admin, opened.ok, 30_000);
  rig.fanout();
  // One closed broadcast first: the JIT and the first-packet allocations are not what we measure.
  const warm = rig.waitGot(1, BROADCAST_TIMEOUT_MS);
  await rig.broadcast(1);
  await warm;
  await rig.reset();
  const m = rig.meters();
  m.start();
  const t0 = performance.now();
  const waits: Promise<boolean>[] = [];
  let late = 0;
  for (let k = 0; k < c.broadcasts; k++) {
    const due = t0 + k * c.intervalMs;
    const now = performance.now();
    if (now < due) await sleep(due - now);
    else if (k > 0) late++;
    waits.push(rig.waitGot(k + 2, BROADCAST_TIMEOUT_MS));
    await rig.broadcast(k + 2);
  }
  const complete = await Promise.all(waits);
  m.stop(f);
  const rep = await rig.report();
  f.sessions = opened.ok;
  f.deliveries = rep.deliveries;
  f.missing = Math.max(0, opened.ok * c.broadcasts - rep.deliveries);
  f.late_broadcasts = late;
  f.p50_ms = ms(rep.hist.percentile(0.5));
  f.p99_ms = ms(rep.hist.percentile(0.99));
  f.errors = opened.failed + rep.errors + complete.filter((x) => !x).length;
  if (rep.deliveries === 0) throw new Error('no broadcast was delivered');
};

const echo = async (rig: Rig, c: Extract<CaseSpec, { kind: 'echo' }>, f: Record<string, number>): Promise<void> => {
  const opened = await rig.open(c.clients);
  if (opened.ok === 0) throw new Error(`no session could be set up: ${opened.firstError}`);
  await waitHeld(rig.admin, opened.ok, 30_000);
  const w = rig.workers[0];
  if (w === undefined) throw new Error('no worker');
  const m = rig.meters();
  w.send({ type: 'echo', clients: c.clients, warmupMs: c.warmupMs, durationMs: c.durationMs, maxRoundTrips: MAX_ROUND_TRIPS });
  await w.next('measuring', c.warmupMs + 10_000);
  m.start();
  const r = await w.next('echoed', c.durationMs + 10_000);
  m.stop(f);
  const hist = new LogHistogram();
  hist.merge(r.hist);
  f.clients = opened.ok;
  f.round_trips_per_s = r.roundTrips / (r.elapsedMs / 1000);
  f.p50_ms = ms(hist.percentile(0.5));
  f.p99_ms = ms(hist.percentile(0.99));
  f.requests_per_rt = r.roundTrips > 0 ? r.requests / r.roundTrips : NaN;
  f.errors = opened.failed + r.errors;
  if (r.roundTrips === 0) throw new Error('no echo came back');
};

/** Run `c` with `rig` (its server already started), writing its figures into `figures`. */
export const measureCase = async (rig: Rig, c: CaseSpec, figures: Record<string, number>): Promise<void> => {
  switch (c.kind) {
    case 'idle':
      return idle(rig, c, figures);
    case 'fanout-closed':
      return fanoutClosed(rig, c, figures);
    case 'fanout-open':
      return fanoutOpen(rig, c, figures);
    case 'echo':
      return echo(rig, c, figures);
  }
};

/** Run `c` against a fresh process of `spec`, and always kill what it started. */
export const runCase = async (c: CaseSpec, spec: ServerSpec, ctx: CaseContext): Promise<CaseResult> => {
  const figures: Record<string, number> = {};
  let server: RunningServer;
  try {
    server = await startServer(spec, await freePort(), ctx.serverCore);
  } catch (e) {
    return { answered: false, figures, error: e instanceof Error ? e.message : String(e) };
  }
  const rig = new Rig(server, ctx);
  try {
    await measureCase(rig, c, figures);
    return { answered: true, figures, ...(rig.firstError === '' ? {} : { note: `a session setup failed: ${rig.firstError}` }) };
  } catch (e) {
    return { answered: false, figures, error: e instanceof Error ? e.message : String(e) };
  } finally {
    await rig.release();
  }
};
