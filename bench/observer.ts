/**
 * `npm run bench:observer`: what one open observer costs the echo server. One echo server process
 * (`node dist/bin/echo.js`, its observer on as on any loopback bind), `--sessions` held polls,
 * `--clients` of them doing echo round trips; the echo throughput is measured in rounds of two
 * phases, with no observer page open and with one open (a CometClient on its feed, as the page),
 * in ABBA order so a drift of the machine does not favour either. Prints the medians side by side,
 * their ratio, and how often the open observer was updated (its longest gap: is it responsive).
 *
 *   npm run bench:observer -- [--sessions 19000] [--clients 200] [--rounds 3] [--duration 3000]
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CometClient } from '../lib/client/index.js';
import { MAX_ROUND_TRIPS } from './cases.js';
import { Rig, sleep, waitHeld } from './rig.js';
import { freePort, startServer } from './server-proc.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The drop the issue allows (percent). */
export const MAX_DROP_PCT = 5;

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '19000' },
    clients: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '3000' },
    warmup: { type: 'string', default: '1000' },
  },
});
const int = (s: string, name: string, min: number, max: number): number => {
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max}`);
  return n;
};
const sessions = int(values.sessions, 'sessions', 1, 40_000);
const clients = Math.min(int(values.clients, 'clients', 1, 5_000), sessions);
const rounds = int(values.rounds, 'rounds', 1, 20);
const durationMs = int(values.duration, 'duration', 500, 60_000);
const warmupMs = int(values.warmup, 'warmup', 0, 10_000);

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? (s[(s.length - 1) / 2] ?? NaN) : ((s[s.length / 2 - 1] ?? 0) + (s[s.length / 2] ?? 0)) / 2;
};

const main = async (): Promise<number> => {
  const server = await startServer({ name: 'comet-fsm', argv: ['node', join(here, '..', 'bin', 'echo.js')], protocol: 'v1', path: '/comet' }, await freePort(), null);
  const rig = new Rig(server, { serverCore: null, loadCore: null, workerScript: join(here, 'loadgen', 'worker.js'), addressSeed: Math.floor(Math.random() * 200) });
  try {
    const opened = await rig.open(sessions);
    if (opened.ok === 0) throw new Error(`no session could be set up: ${opened.firstError}`);
    await waitHeld(rig.admin, opened.ok, 120_000);
    const w = rig.workers[0];
    if (w === undefined) throw new Error('no worker');
    const echo = async (): Promise<number> => {
      w.send({ type: 'echo', clients, warmupMs, durationMs, maxRoundTrips: MAX_ROUND_TRIPS });
      await w.next('measuring', warmupMs + 10_000);
      const r = await w.next('echoed', durationMs + 10_000);
      await sleep(300); // the last round trips drain before the next phase
      return r.roundTrips / (r.elapsedMs / 1000);
    };
    const off: number[] = [];
    const on: number[] = [];
    const gaps: number[] = [];
    let packets = 0;
    let bytes = 0;
    const withObserver = async (): Promise<number> => {
      const feed = new CometClient(`http://127.0.0.1:${server.port}/observer/comet`);
      let last = 0;
      let firstTree: () => void = () => {};
      const gotTree = new Promise<void>((r) => (firstTree = r));
      feed.on('message', ({ data }) => {
        packets++;
        bytes += JSON.stringify(data).length;
        const type = (data as { type?: string }).type;
        if (type === 'tree') firstTree();
        if (type === 'counts') {
          const now = performance.now();
          if (last > 0) gaps.push(now - last);
          last = now;
        }
      });
      await feed.connect();
      await Promise.race([gotTree, sleep(10_000)]);
      try {
        return await echo();
      } finally {
        await feed.close();
      }
    };
    // What one tick's reading costs the server: the tree and the counts over every session
    // (GET /observer/api/tree), beside a request that reads nothing (GET /healthz).
    const latency = async (path: string): Promise<number> => {
      const ts: number[] = [];
      for (let i = 0; i < 45; i++) {
        const t0 = performance.now();
        await (await fetch(`http://127.0.0.1:${server.port}${path}`)).text();
        if (i >= 5) ts.push(performance.now() - t0);
      }
      return median(ts);
    };
    const treeMs = await latency('/observer/api/tree');
    const healthMs = await latency('/healthz');
    await echo(); // JIT and sockets warm: the first phase would otherwise lose to the second
    for (let r = 0; r < rounds; r++) {
      // ABBA: off, on in even rounds; on, off in odd ones.
      if (r % 2 === 0) {
        off.push(await echo());
        on.push(await withObserver());
      } else {
        on.push(await withObserver());
        off.push(await echo());
      }
      console.log(`round ${r + 1}: off ${off.at(-1)?.toFixed(0)} rt/s, on ${on.at(-1)?.toFixed(0)} rt/s`);
    }
    const a = median(off);
    const b = median(on);
    const drop = (1 - b / a) * 100;
    console.log('');
    console.log(`| sessions held | echo clients | no observer (rt/s, median) | one observer open (rt/s, median) | ratio | drop | observer: packets, bytes, longest gap between updates |`);
    console.log(`|---|---|---|---|---|---|---|`);
    console.log(`| ${opened.ok} | ${clients} | ${a.toFixed(0)} | ${b.toFixed(0)} | ${(b / a).toFixed(3)} | ${drop.toFixed(1)} % | ${packets}, ${(bytes / 1024).toFixed(1)} KiB, ${Math.max(0, ...gaps).toFixed(0)} ms |`);
    console.log('');
    console.log(`one read of the tree and the counts over ${opened.ok} sessions (GET /observer/api/tree): ${treeMs.toFixed(2)} ms median, GET /healthz ${healthMs.toFixed(2)} ms: a tick reads this once, plus one pass for each open page's rows`);
    console.log('');
    console.log(drop < MAX_DROP_PCT ? `PASS: the drop is under ${MAX_DROP_PCT} %` : `FAIL: the drop is ${drop.toFixed(1)} %, over ${MAX_DROP_PCT} % (a busy machine says little: see docs/benchmarks.md#noise)`);
    return drop < MAX_DROP_PCT ? 0 : 1;
  } finally {
    await rig.release();
  }
};

main().then((code) => process.exit(code), (err: unknown) => {
  console.error(`bench:observer: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(2);
});
