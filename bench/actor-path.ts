/**
 * `npm run bench:actor`: what the actor path costs per message, without HTTP. In one process, side
 * by side, each a closed loop with 200 messages in flight (as echo-200 keeps 200 requests):
 *
 * - `direct`: the same work as a plain function call that resolves a promise: no actor at all;
 * - `nact dispatch`: a bare nact actor counting messages (nact's own mailbox and scheduling);
 * - `gen_fsm cast`: `sendEvent` to a gen_fsm (proc_lib + gen_fsm on that actor);
 * - `gen_fsm call`: `syncSendEvent` to a gen_fsm that replies at once: what every HTTP request
 *   of comet-fsm goes through (a From, a monitor, a timeout, the reply).
 *
 * Rounds interleave the four; the table shows medians, ratios to `direct` and GC time per message.
 * Bounded: ROUNDS x OPS messages per variant.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import * as genFsm from '../lib/otp/gen_fsm.js';
import { dispatch, spawnActor, startSystem, stopDecision, stopSystem, type Ref } from '../lib/otp/nact.js';
import type { From } from '../lib/otp/proc_lib.js';

const OPS = 200_000;
const IN_FLIGHT = 200;
const ROUNDS = 5;

type Ev = { readonly type: 'ping'; readonly from: From<number> | undefined };

interface Variant {
  readonly name: string;
  /** Send one message; resolve when it has been handled. */
  send(): Promise<unknown>;
}

let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });

async function closedLoop(v: Variant): Promise<{ opsPerSec: number; gcUsPerOp: number }> {
  let started = 0;
  const gc0 = gcMs;
  const t0 = process.hrtime.bigint();
  const worker = async (): Promise<void> => {
    while (started < OPS) {
      started++;
      await v.send();
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return { opsPerSec: OPS / s, gcUsPerOp: ((gcMs - gc0) * 1000) / OPS };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

async function main(): Promise<void> {
  const system = startSystem();

  let count = 0;
  const direct: Variant = {
    name: 'direct',
    send: () => Promise.resolve(++count),
  };

  // A bare nact actor; each message carries the resolver to call once handled.
  const bare: Ref<() => void> = spawnActor<number, () => void>(system, 'bare', (n, done) => {
    done();
    return n + 1;
  }, { initialState: 0, onCrash: (_m, _e, ctx) => stopDecision(ctx) });
  const nactDispatch: Variant = {
    name: 'nact dispatch',
    send: () => new Promise<void>((resolve) => dispatch(bare, resolve)),
  };

  const pinger: genFsm.GenFsm<undefined, 'ready', number, Ev> = {
    init: () => ({ ok: 'ready', data: 0 }),
    states: {
      ready: (ev, n, ctx) => {
        if (ev.from) ctx.reply(ev.from, n + 1);
        return { next: 'ready', data: n + 1 };
      },
    },
  };
  const fsm = await genFsm.start(system, pinger, undefined);
  if (!('ok' in fsm)) throw new Error('gen_fsm did not start');
  const pid = fsm.ok;
  // A cast has no reply: a call follows every 64th one to learn when they have been handled.
  let casts = 0;
  const cast: Variant = {
    name: 'gen_fsm cast',
    send: () => {
      genFsm.sendEvent(pid, { type: 'ping', from: undefined });
      return ++casts % 64 === 0 ? genFsm.syncSendEvent(pid, (from: From<number>): Ev => ({ type: 'ping', from }), 5000) : Promise.resolve();
    },
  };
  const call: Variant = {
    name: 'gen_fsm call',
    send: () => genFsm.syncSendEvent(pid, (from: From<number>): Ev => ({ type: 'ping', from }), 65_000),
  };

  const variants = [direct, nactDispatch, cast, call];
  const results = new Map<string, { ops: number[]; gc: number[] }>(variants.map((v) => [v.name, { ops: [], gc: [] }]));
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < variants.length; i++) {
      const v = variants[(i + round) % variants.length] as Variant;
      const r = await closedLoop(v);
      const acc = results.get(v.name);
      acc?.ops.push(r.opsPerSec);
      acc?.gc.push(r.gcUsPerOp);
    }
  }
  await genFsm.stop(pid);
  stopSystem(system);

  const base = median(results.get('direct')?.ops ?? []);
  const lines = [
    `actor path, in process: ${ROUNDS} rounds x ${OPS.toLocaleString('en-US')} messages, ${IN_FLIGHT} in flight, Node ${process.version}; medians`,
    '',
    '| variant | messages/s | µs per message | × direct (time) | GC µs per message |',
    '|---|---|---|---|---|',
  ];
  for (const v of variants) {
    const r = results.get(v.name);
    const ops = median(r?.ops ?? []);
    lines.push(`| ${v.name} | ${Math.round(ops).toLocaleString('en-US')} | ${(1e6 / ops).toFixed(2)} | ${(base / ops).toFixed(1)}× | ${median(r?.gc ?? []).toFixed(2)} |`);
  }
  console.log(lines.join('\n'));
}

await main();
