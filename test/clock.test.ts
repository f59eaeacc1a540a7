/**
 * Clocks: ManualClock's ordering (time order, ties in scheduling order, callbacks scheduled during
 * an advance) and the system clock's contract.
 */
import t from 'tap';
import { ManualClock, systemClock } from '../lib/otp/clock.js';

void t.test('ManualClock', (t) => {
  void t.test('starts at 0 and moves only when advanced', (t) => {
    const clock = new ManualClock();
    t.equal(clock.now(), 0);
    clock.advance(250);
    t.equal(clock.now(), 250);
    clock.advance(0);
    t.equal(clock.now(), 250);
    t.end();
  });

  void t.test('runs callbacks due by the target, in time order; later ones stay pending', (t) => {
    const clock = new ManualClock();
    const ran: string[] = [];
    clock.setTimeout(() => ran.push('c@300'), 300);
    clock.setTimeout(() => ran.push('a@100'), 100);
    clock.setTimeout(() => ran.push('b@200'), 200);
    clock.advance(200);
    t.same(ran, ['a@100', 'b@200']);
    t.equal(clock.pendingCount, 1);
    clock.advance(100);
    t.same(ran, ['a@100', 'b@200', 'c@300']);
    t.equal(clock.pendingCount, 0);
    t.end();
  });

  void t.test('ties run in scheduling order', (t) => {
    const clock = new ManualClock();
    const ran: number[] = [];
    for (let i = 0; i < 5; i++) clock.setTimeout(() => ran.push(i), 100);
    clock.advance(100);
    t.same(ran, [0, 1, 2, 3, 4]);
    t.end();
  });

  void t.test('a callback sees now() at its own due time, not the target', (t) => {
    const clock = new ManualClock();
    const seen: number[] = [];
    clock.setTimeout(() => seen.push(clock.now()), 40);
    clock.setTimeout(() => seen.push(clock.now()), 70);
    clock.advance(1000);
    t.same(seen, [40, 70]);
    t.equal(clock.now(), 1000);
    t.end();
  });

  void t.test('callbacks scheduled by a callback run in the same advance if due by the target', (t) => {
    const clock = new ManualClock();
    const ran: string[] = [];
    clock.setTimeout(() => {
      ran.push('first@10');
      clock.setTimeout(() => ran.push('chained@30'), 20);
      clock.setTimeout(() => ran.push('too-late@60'), 50);
    }, 10);
    clock.setTimeout(() => ran.push('other@40'), 40);
    clock.advance(50);
    t.same(ran, ['first@10', 'chained@30', 'other@40']);
    t.equal(clock.pendingCount, 1);
    clock.advance(10);
    t.same(ran.at(-1), 'too-late@60');
    t.end();
  });

  void t.test('a callback scheduled at 0 ms runs on the next advance, even advance(0)', (t) => {
    const clock = new ManualClock();
    let ran = false;
    clock.setTimeout(() => {
      ran = true;
    }, 0);
    t.equal(ran, false, 'never synchronously');
    clock.advance(0);
    t.equal(ran, true);
    t.end();
  });

  void t.test('negative delays count as 0', (t) => {
    const clock = new ManualClock();
    clock.advance(100);
    const ran: string[] = [];
    clock.setTimeout(() => ran.push('neg'), -50);
    clock.setTimeout(() => ran.push('zero'), 0);
    clock.advance(0);
    t.same(ran, ['neg', 'zero']);
    t.end();
  });

  void t.test('clearTimeout: the callback never runs, including one cleared by an earlier callback', (t) => {
    const clock = new ManualClock();
    const ran: string[] = [];
    const b = clock.setTimeout(() => ran.push('b'), 20);
    clock.setTimeout(() => {
      ran.push('a');
      clock.clearTimeout(b);
    }, 10);
    const c = clock.setTimeout(() => ran.push('c'), 30);
    clock.clearTimeout(c);
    clock.advance(100);
    t.same(ran, ['a']);
    t.equal(clock.pendingCount, 0);
    t.end();
  });
  t.end();
});

void t.test('systemClock', (t) => {
  void t.test('now() never goes backwards', (t) => {
    let last = systemClock.now();
    let backwards = 0;
    for (let i = 0; i < 1000; i++) {
      const now = systemClock.now();
      if (now < last) backwards++;
      last = now;
    }
    t.equal(backwards, 0);
    t.end();
  });

  void t.test('setTimeout runs the callback; clearTimeout prevents it', async (t) => {
    let cleared = false;
    const h = systemClock.setTimeout(() => {
      cleared = true;
    }, 1);
    systemClock.clearTimeout(h);
    await new Promise<void>((resolve) => {
      systemClock.setTimeout(resolve, 5);
    });
    t.equal(cleared, false);
  });
  t.end();
});
