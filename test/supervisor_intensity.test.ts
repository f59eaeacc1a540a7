/**
 * Restart intensity: OTP's sliding window of monotonic timestamps (more than `intensity` restarts
 * within `period` seconds and the supervisor gives up), read from a ManualClock: no sleeping.
 */
import t from 'tap';
import { ManualClock } from '../lib/otp/clock.js';
import { isAlive } from '../lib/otp/proc_lib.js';
import * as sup from '../supervisors/supervisor.js';
import { RestartIntensity } from '../supervisors/restart_intensity.js';
import { Lab } from './fixtures/crash_worker.js';
import { crash, exitWith, pidOf, report, snapshot, startTop } from './fixtures/sup_tree.js';

void t.test('the window: more than intensity restarts within period seconds, boundary included', (t) => {
  // A restart exactly `period` seconds after another still counts; one millisecond later it does not.
  const clock = new ManualClock();
  const w = new RestartIntensity(1, 5, clock);
  t.equal(w.add(), 'ok');
  clock.advance(5000);
  t.equal(w.add(), 'terminate', '2 restarts within [0, 5000] ms');

  const clock2 = new ManualClock();
  const w2 = new RestartIntensity(1, 5, clock2);
  t.equal(w2.add(), 'ok');
  clock2.advance(5001);
  t.equal(w2.add(), 'ok', 'the first restart slid out of the window');
  t.equal(w2.count, 1);
  t.end();
});

void t.test('intensity 0: the first restart is one too many', (t) => {
  // With intensity 0 a supervisor never restarts anything: any exit that asks for a restart stops it.
  const w = new RestartIntensity(0, 5, new ManualClock());
  t.equal(w.add(), 'terminate');
  t.end();
});

void t.test('the window slides: old restarts are forgotten one by one', (t) => {
  // Only restarts younger than the period are counted, so a steady trickle never trips the limit.
  const clock = new ManualClock();
  const w = new RestartIntensity(3, 10, clock);
  const verdicts: string[] = [];
  for (let i = 0; i < 20; i++) {
    verdicts.push(w.add());
    clock.advance(4000); // one restart every 4 s: at most 3 inside any 10 s window
  }
  t.ok(verdicts.every((v) => v === 'ok'));
  t.equal(w.count, 3);
  t.end();
});

void t.test('multiple_restarts', async (t) => {
  // Restarts spread wider than the period never exhaust the intensity; bunched together they do.
  const lab = new Lab();
  const { sup: s, clock, exited } = await startTop(t, { strategy: 'one_for_one', intensity: 1, period: 1 }, [lab.worker('child1', { shutdown: 'brutal_kill' })]);
  // countChildren after each crash: the supervisor has handled the EXIT (and read the clock) before time moves.
  for (let i = 0; i < 4; i++) {
    await crash(await pidOf(s, 'child1'));
    await sup.countChildren(s);
    clock.advance(1001);
  }
  t.ok(isAlive(s), 'alive after 4 restarts, each more than 1 s apart');
  t.equal(lab.inits('child1'), 5);
  await crash(await pidOf(s, 'child1'));
  await sup.countChildren(s);
  clock.advance(1000);
  await crash(await pidOf(s, 'child1'));
  t.equal(await exited, 'shutdown', 'two restarts within 1 s exceed intensity 1');
});

void t.test('reached_max_restart_intensity stops the children in reverse order and exits with shutdown', async (t) => {
  // Giving up is orderly: every other child's terminate runs, last started first, and the supervisor reports why.
  const lab = new Lab();
  const { sup: s, exited, logger } = await startTop(t, { strategy: 'one_for_one', intensity: 1, period: 5 }, [
    lab.worker('a'), lab.worker('b'), lab.worker('c'), lab.worker('d'),
  ]);
  const before = await snapshot(s);
  await crash(await pidOf(s, 'b'));
  const b2 = await pidOf(s, 'b'); // the restart is done
  lab.log.length = 0;
  await crash(b2);
  t.equal(await exited, 'shutdown');
  t.same(lab.log, ['terminate:b:Error: boom', 'terminate:d:shutdown', 'terminate:c:shutdown', 'terminate:a:shutdown']);
  const last = logger.reports().at(-1);
  t.match(last, { errorContext: 'shutdown', reason: 'reached_max_restart_intensity', child: 'b', action: 'shutdown' });
  report(t, before, 'b throws twice within 5 s (intensity 1)', await snapshot(undefined));
});

void t.test('exits that do not restart do not count', async (t) => {
  // Only restarts count toward the intensity: a transient child's normal exits, however many, do not.
  const lab = new Lab();
  const specs = Array.from({ length: 5 }, (_, i) => lab.worker(`t${i}`, { restart: 'transient' }));
  const { sup: s } = await startTop(t, { strategy: 'one_for_one', intensity: 0, period: 5 }, specs);
  for (let i = 0; i < 5; i++) {
    const p = await pidOf(s, `t${i}`);
    await exitWith(p, 'normal');
  }
  t.ok(isAlive(s));
  t.same(await sup.countChildren(s), { specs: 5, active: 0, supervisors: 0, workers: 5 });
});

void t.test('restart_child and terminate_child do not count', async (t) => {
  // OTP counts only the restarts the supervisor decides; the API's stop and restart are free.
  const lab = new Lab();
  const { sup: s } = await startTop(t, { strategy: 'one_for_one', intensity: 0, period: 5 }, [lab.worker('a')]);
  for (let i = 0; i < 3; i++) {
    t.equal(await sup.terminateChild(s, 'a'), 'ok');
    t.ok('ok' in (await sup.restartChild(s, 'a')));
  }
  t.ok(isAlive(s));
  t.equal(lab.inits('a'), 4);
});
