/**
 * TimerTable, the live-ref set behind start_timer/cancel_timer: a timeout is delivered only if
 * its timer is still live when it reaches the front of the mailbox.
 */
import t from 'tap';
import { ManualClock, systemClock } from '../lib/otp/clock.js';
import { TimerTable, type TimerRef } from '../lib/otp/timers.js';

function table() {
  const clock = new ManualClock();
  const timers = new TimerTable(clock);
  const fired: TimerRef[] = [];
  const start = (ms: number): TimerRef => timers.start(ms, (ref) => fired.push(ref));
  return { clock, timers, fired, start };
}

void t.test('a timer fires with its own ref once the clock reaches it', (t) => {
  const { clock, timers, fired, start } = table();
  const a = start(100);
  const b = start(50);
  t.not(a, b);
  t.not(a.id, b.id);
  clock.advance(99);
  t.same(fired, [b]);
  clock.advance(1);
  t.same(fired, [b, a]);
  t.equal(timers.size, 2, 'fired but not consumed: both still live until their timeouts are handled');
  t.end();
});

void t.test('consume: true once for a live timer, then false', (t) => {
  const { clock, timers, start } = table();
  const a = start(10);
  clock.advance(10);
  t.equal(timers.isLive(a), true);
  t.equal(timers.consume(a), true);
  t.equal(timers.consume(a), false);
  t.equal(timers.isLive(a), false);
  t.equal(timers.cancel(a), false, 'cancel after delivery is false, as erlang:cancel_timer');
  t.end();
});

void t.test('cancel before it fires: the ms left, the clock callback is gone, a second cancel is false', (t) => {
  const { clock, timers, fired, start } = table();
  const a = start(10);
  clock.advance(3);
  t.equal(timers.cancel(a), 7, 'erlang:cancel_timer/1: the time left');
  t.equal(clock.pendingCount, 0);
  clock.advance(100);
  t.same(fired, []);
  t.equal(timers.cancel(a), false);
  t.equal(timers.isLive(a), false);
  t.end();
});

void t.test('the race: fired, then cancelled before its timeout is handled — consume drops it', (t) => {
  const { clock, timers, fired, start } = table();
  const a = start(10);
  clock.advance(10);
  t.same(fired, [a], 'the timeout is on its way (in the mailbox)');
  t.equal(timers.cancel(a), 0, 'the cancel still finds it live: fired, so 0 ms left (gen_fsm:cancel_timer/1)');
  t.equal(timers.consume(a), false, 'so the queued timeout is dropped');
  t.end();
});

void t.test('cancelAll clears every clock callback; nothing fires, nothing is live', (t) => {
  const { clock, timers, fired, start } = table();
  const a = start(10);
  const b = start(20);
  t.equal(clock.pendingCount, 2);
  timers.cancelAll();
  t.equal(clock.pendingCount, 0);
  t.equal(timers.size, 0);
  clock.advance(100);
  t.same(fired, []);
  t.equal(timers.isLive(a) || timers.isLive(b), false);
  t.equal(timers.consume(a), false);
  t.end();
});

void t.test('an unused table answers without allocating: nothing live, nothing to cancel', (t) => {
  const { timers } = table();
  const stranger = table().start(5);
  t.equal(timers.size, 0);
  t.equal(timers.isLive(stranger), false);
  t.equal(timers.cancel(stranger), false);
  t.equal(timers.consume(stranger), false);
  t.doesNotThrow(() => timers.cancelAll());
  t.end();
});

void t.test('a table whose timers were all cancelled (the process exited) starts no new timer', (t) => {
  const clock = new ManualClock();
  const table = new TimerTable(clock);
  table.start(100, () => {});
  table.cancelAll();
  let fired = false;
  const ref = table.start(100, () => { fired = true; });
  t.equal(clock.pendingCount, 0, 'nothing scheduled: nothing keeps the event loop alive');
  t.notOk(table.isLive(ref));
  clock.advance(1000);
  t.notOk(fired);
  t.end();
});

// On the system clock a timer is Node's own, its record passed as the callback's argument (no
// closure per timer): the same contract as on an injected clock.
void t.test('system_clock: a timer fires with its ref and its argument; a cancelled one never does', async (t) => {
  const timers = new TimerTable(systemClock);
  const fired: [TimerRef, string][] = [];
  const deliver = (ref: TimerRef, arg: string): void => {
    fired.push([ref, arg]);
  };
  const a = timers.start(5, deliver, 'a');
  const b = timers.start(1, deliver, 'b');
  const c = timers.start(5, deliver, 'c');
  t.equal(timers.size, 3);
  t.type(timers.cancel(c), 'number', 'cancelled before it fired: the ms left');
  await new Promise((r) => setTimeout(r, 30));
  t.same(fired.map(([, arg]) => arg), ['b', 'a'], 'in due order, each with its own argument');
  t.equal(fired[0]?.[0], b);
  t.equal(fired[1]?.[0], a);
  t.equal(timers.cancel(a), 0, 'fired, not consumed: cancel flushes it');
  t.equal(timers.consume(b), true);
  t.equal(timers.size, 0);
  const d = timers.start(5, deliver, 'd');
  timers.cancelAll();
  t.notOk(timers.isLive(d));
  await new Promise((r) => setTimeout(r, 20));
  t.equal(fired.length, 2, 'cancelAll stops a system-clock timer too');
});
