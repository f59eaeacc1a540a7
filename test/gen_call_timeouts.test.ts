/**
 * gen's call timeouts on one coarse timer wheel: one timer for every pending call, a timeout
 * never before its time and at most one granularity after, a call settled otherwise leaves
 * nothing behind. The wheel's timing on a ManualClock; the calls' through proc_lib.
 */
import t from 'tap';
import { CALL_TIMEOUT_GRANULARITY_MS, CallTimerWheel, type WheelEntry } from '../lib/otp/call_timeouts.js';
import { ManualClock } from '../lib/otp/clock.js';
import { callTimeoutsPending } from '../lib/otp/gen.js';
import * as proc from '../lib/otp/proc_lib.js';
import type { From, ProcessCore } from '../lib/otp/proc_lib.js';
import { newSystem, okPid, rejectionOf, settle, QUICK } from './fixtures/otp.js';

const G = CALL_TIMEOUT_GRANULARITY_MS;

class Entry implements WheelEntry {
  wheelPrev: WheelEntry['wheelPrev'] = undefined;
  wheelNext: WheelEntry['wheelNext'] = undefined;
  firedAt: number | undefined;
  constructor(readonly clock: ManualClock, readonly deadline: number) {}
  expired(): void {
    if (this.firedAt !== undefined) throw new Error('fired twice');
    this.firedAt = this.clock.now();
  }
}

void t.test('the wheel', (t) => {
  void t.test('10,000 pending timeouts hold one clock timer', QUICK, (t) => {
    const clock = new ManualClock();
    const wheel = new CallTimerWheel(clock);
    t.equal(clock.pendingCount, 0, 'no timer while nothing waits');
    for (let i = 0; i < 10_000; i++) {
      wheel.add(new Entry(clock, 0), 20_000 + ((i * 7919) % 60_000));
      clock.advance(i % 3);
    }
    t.equal(wheel.size, 10_000);
    t.equal(clock.pendingCount, 1);
    clock.advance(90_000);
    t.equal(wheel.size, 0);
    t.equal(clock.pendingCount, 0, 'no timer once every timeout has fired');
    t.end();
  });

  // A ref'd timer left armed for a bucket a minute away kept a process with nothing left to do
  // alive that long after its last call was answered (a test file timed out on it).
  void t.test('no timer once the last entry is removed, and one again for the next', QUICK, (t) => {
    const clock = new ManualClock();
    const wheel = new CallTimerWheel(clock);
    const a = new Entry(clock, 0);
    const b = new Entry(clock, 0);
    wheel.add(a, 65_000);
    wheel.add(b, 30_000);
    t.equal(clock.pendingCount, 1);
    wheel.remove(b);
    t.equal(clock.pendingCount, 1, 'still armed while an entry waits');
    wheel.remove(a);
    t.equal(clock.pendingCount, 0, 'no timer once nothing waits');
    t.notOk(wheel.armed);
    wheel.add(b, 5_000);
    t.equal(clock.pendingCount, 1, 'armed again for the next');
    clock.advance(5_000 + G);
    t.ok(b.firedAt !== undefined, 'and it fires');
    t.equal(clock.pendingCount, 0);
    t.end();
  });

  // On a clock that can unref (the system's), the timer is kept but no longer keeps the process
  // alive: a wheel that empties and fills with every request would otherwise make a timer each time.
  void t.test('on a clock that can unref: the timer is unref\'d once nothing waits, ref\'d again for the next', QUICK, (t) => {
    const manual = new ManualClock();
    const refs: boolean[] = [];
    const clock = {
      now: () => manual.now(),
      setTimeout: (fn: () => void, ms: number) => manual.setTimeout(fn, ms),
      clearTimeout: (h: Parameters<ManualClock['clearTimeout']>[0]) => manual.clearTimeout(h),
      setRef: (_h: unknown, ref: boolean) => refs.push(ref),
    };
    const wheel = new CallTimerWheel(clock);
    const a = new Entry(manual, 0);
    wheel.add(a, 65_000);
    t.ok(wheel.armed);
    wheel.remove(a);
    t.same(refs, [false], 'unref\'d, not cleared');
    t.notOk(wheel.armed, 'nothing keeps the process alive');
    t.equal(manual.pendingCount, 1, 'the timer is still there');
    wheel.add(a, 70_000);
    t.same(refs, [false, true], 'ref\'d again by the next entry');
    t.ok(wheel.armed);
    manual.advance(70_000 + G);
    t.ok(a.firedAt !== undefined, 'which still fires');
    t.end();
  });

  void t.test('a timeout fires never before its time and at most one granularity after', QUICK, (t) => {
    const clock = new ManualClock();
    const wheel = new CallTimerWheel(clock);
    const entries: Entry[] = [];
    clock.advance(3.7);
    for (let i = 0; i < 2_000; i++) {
      const ms = G + ((i * 104_729) % 9_973) + (i % 5) / 4;
      const entry = new Entry(clock, clock.now() + ms);
      entries.push(entry);
      wheel.add(entry, ms);
      if (i % 10 === 0) clock.advance(i % 17);
    }
    // In steps of 1 ms: the first moment an entry may fire is the moment it does.
    for (let step = 0; step < 12_000 && wheel.size > 0; step++) clock.advance(1);
    let early = 0;
    let late = 0;
    for (const e of entries) {
      if (e.firedAt === undefined || e.firedAt < e.deadline) early++;
      else if (e.firedAt > e.deadline + G) late++;
    }
    t.equal(early, 0, 'none early (or never)');
    t.equal(late, 0, 'none more than a granularity late');
    t.end();
  });

  void t.test('a removed entry never fires and leaves no entry; the timer stops at its next tick', QUICK, (t) => {
    const clock = new ManualClock();
    const wheel = new CallTimerWheel(clock);
    const a = new Entry(clock, 0);
    const b = new Entry(clock, 0);
    wheel.add(a, 1_000);
    wheel.add(b, 1_000);
    wheel.remove(a);
    wheel.remove(a);
    t.equal(wheel.size, 1);
    wheel.remove(b);
    t.equal(wheel.size, 0);
    t.same([a.wheelPrev, a.wheelNext, b.wheelPrev, b.wheelNext], [undefined, undefined, undefined, undefined]);
    clock.advance(2_000);
    t.equal(a.firedAt, undefined);
    t.equal(b.firedAt, undefined);
    t.equal(clock.pendingCount, 0);
    t.end();
  });

  void t.test('a later, shorter timeout re-arms the timer earlier', QUICK, (t) => {
    const clock = new ManualClock();
    const wheel = new CallTimerWheel(clock);
    const long = new Entry(clock, 10_000);
    const short = new Entry(clock, 500);
    wheel.add(long, 10_000);
    wheel.add(short, 500);
    t.equal(clock.pendingCount, 1);
    clock.advance(500 + G);
    t.ok(short.firedAt !== undefined && short.firedAt >= 500 && short.firedAt <= 500 + G);
    t.equal(long.firedAt, undefined);
    clock.advance(10_000);
    t.ok(long.firedAt !== undefined && long.firedAt >= 10_000 && long.firedAt <= 10_000 + G);
    t.end();
  });
  t.end();
});

type Msg = { readonly t: 'get'; readonly from: From<number> } | { readonly t: 'hold'; readonly from: From<number> };

function holder(): ProcessCore<{ held: From<number>[] }, Msg> {
  return {
    label: 'holder',
    init: () => ({ ok: { held: [] } }),
    handle(s, msg) {
      switch (msg.t) {
        case 'get':
          proc.reply(msg.from, s.held.length);
          return { next: s };
        case 'hold':
          s.held.push(msg.from);
          return { next: s };
      }
    },
    terminate: () => undefined,
  };
}

void t.test('calls', (t) => {
  void t.test('10,000 pending calls arm at most one Node timer', QUICK, async (t) => {
    const system = newSystem(t);
    const pid = okPid(await proc.start(system, holder()));
    const realSetTimeout = globalThis.setTimeout;
    let armed = 0;
    globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
      armed++;
      return realSetTimeout(...args);
    }) as typeof setTimeout;
    t.teardown(() => {
      globalThis.setTimeout = realSetTimeout;
    });
    const calls: Promise<number>[] = [];
    for (let i = 0; i < 10_000; i++) calls.push(proc.call(pid, (from: From<number>): Msg => ({ t: 'hold', from }), 45_000 + (i % 200)));
    globalThis.setTimeout = realSetTimeout;
    t.ok(armed <= 1, `${armed} Node timers for 10,000 calls`);
    t.equal(callTimeoutsPending().size, 10_000);
    proc.kill(pid);
    const errs = await Promise.all(calls.map(rejectionOf));
    t.ok(errs.every((e) => e.code === 'ERR_OTP_EXIT'), 'each told of the exit');
    t.equal(callTimeoutsPending().size, 0, 'and off the wheel');
  });

  void t.test('a replied call leaves no entry on the wheel', QUICK, async (t) => {
    const system = newSystem(t);
    const pid = okPid(await proc.start(system, holder()));
    t.equal(await proc.call(pid, (from: From<number>): Msg => ({ t: 'get', from }), 60_000), 0);
    let told = '';
    proc.callWith(pid, (from: From<number>): Msg => ({ t: 'get', from }), 60_000, {
      resolved: (v) => (told = `ok:${v}`),
      rejected: (err) => (told = err.code),
    });
    await settle();
    t.equal(told, 'ok:0');
    t.equal(callTimeoutsPending().size, 0);
    t.notOk(callTimeoutsPending().armed, 'and no timer keeps the process alive');
  });

  void t.test('ERR_OTP_TIMEOUT on the wheel: not before the timeout, same error as ever', QUICK, async (t) => {
    const system = newSystem(t);
    const pid = okPid(await proc.start(system, holder()));
    const ms = 2 * G + 3;
    const started = performance.now();
    const err = await rejectionOf(proc.call(pid, (from: From<number>): Msg => ({ t: 'hold', from }), ms));
    const elapsed = performance.now() - started;
    t.match(err, { code: 'ERR_OTP_TIMEOUT', message: new RegExp(`^no reply from .* within ${ms} ms$`) });
    t.ok(elapsed >= ms, `fired after ${elapsed.toFixed(1)} ms, not before ${ms}`);
    t.equal(callTimeoutsPending().size, 0);
  });
  t.end();
});
