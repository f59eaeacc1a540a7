/**
 * proc_lib, what every behaviour process shares: the init handshake, monitors, links, shutdown
 * (with its timeout and brutal kill), kill, and call's guards. Driven through a bare ProcessCore
 * so each case shows the mechanism, not a behaviour on top of it.
 */
import t from 'tap';
import { ManualClock } from '../lib/otp/clock.js';
import type { ExitReason } from '../lib/otp/errors.js';
import { startSystem, stopSystem } from '../lib/otp/nact.js';
import * as proc from '../lib/otp/proc_lib.js';
import type { From, Pid, ProcessCore } from '../lib/otp/proc_lib.js';
import { deferred, down, newSystem, okPid, recordingLogger, rejectionOf, settle, type Teardown, QUICK } from './fixtures/otp.js';

type Msg =
  | { readonly t: 'add'; readonly n: number }
  | { readonly t: 'get'; readonly from: From<number> }
  | { readonly t: 'hold'; readonly from: From<number> }
  | { readonly t: 'stop'; readonly reason: ExitReason }
  | { readonly t: 'throw' };

interface Hooks {
  /** What terminate awaits: a promise that never settles makes terminate hang. */
  terminateGate?: Promise<void>;
  /** What init awaits before answering. */
  initGate?: Promise<void>;
  readonly events: string[];
}

function counter(hooks: Hooks = { events: [] }): ProcessCore<{ n: number; held?: From<number> }, Msg> {
  return {
    label: 'counter',
    async init(ctx) {
      hooks.events.push(`init:${proc.pidToString(ctx.self).split('/').pop() ?? ''}`);
      if (hooks.initGate) await hooks.initGate;
      return { ok: { n: 0 } };
    },
    handle(s, msg) {
      switch (msg.t) {
        case 'add':
          return { next: { ...s, n: s.n + msg.n } };
        case 'get':
          proc.reply(msg.from, s.n);
          return { next: s };
        case 'hold':
          return { next: { ...s, held: msg.from } };
        case 'stop':
          return { stop: msg.reason, state: s };
        case 'throw':
          throw new Error('boom');
      }
    },
    async terminate(reason) {
      hooks.events.push(`terminate:${typeof reason === 'string' ? reason : 'abnormal'}`);
      if (hooks.terminateGate) await hooks.terminateGate;
      hooks.events.push('terminated');
    },
  };
}

const get = (pid: Pid<Msg>, timeoutMs = 1000): Promise<number> =>
  proc.call(pid, (from: From<number>): Msg => ({ t: 'get', from }), timeoutMs);

async function startCounter(t: Teardown, hooks: Hooks = { events: [] }, opts: proc.StartOptions = {}) {
  const system = newSystem(t);
  const pid = okPid(await proc.start(system, counter(hooks), opts));
  return { system, pid, hooks };
}

// ---------------------------------------------------------------------------------------------

void t.test('start', (t) => {
  void t.test('resolves only after init has run; messages sent meanwhile wait their turn', QUICK, async (t) => {
    const system = newSystem(t);
    const gate = deferred();
    const hooks: Hooks = { events: [], initGate: gate.promise };
    let started = false;
    const starting = proc.start(system, counter(hooks)).then((r) => {
      started = true;
      return r;
    });
    await settle();
    t.equal(started, false);
    gate.resolve();
    const pid = okPid(await starting);
    proc.send(pid, { t: 'add', n: 2 });
    t.equal(await get(pid), 2);
  });

  void t.test('under a parent that is not running: { error: ERR_OTP_NOPROC }', QUICK, async (t) => {
    const system = startSystem();
    stopSystem(system);
    t.match(await proc.start(system, counter()), { error: { code: 'ERR_OTP_NOPROC' } });
  });

  void t.test('kill during init: start resolves { error: killed } and init\'s late result is ignored', QUICK, async (t) => {
    const system = newSystem(t);
    const gate = deferred();
    let self: Pid<Msg> | undefined;
    const core = counter({ events: [], initGate: gate.promise });
    const starting = proc.start(system, {
      ...core,
      init: (ctx) => {
        self = ctx.self;
        return core.init(ctx);
      },
    });
    await settle();
    if (!self) throw new Error('init did not run');
    proc.kill(self);
    t.same(await starting, { error: 'killed' });
    gate.resolve();
    await settle();
    t.notOk(proc.isAlive(self));
  });

  void t.test('every incarnation gets its own path: a stale pid never reaches a new process', QUICK, async (t) => {
    const system = newSystem(t);
    const a = okPid(await proc.start(system, counter()));
    const b = okPid(await proc.start(system, counter()));
    t.not(proc.pidToString(a), proc.pidToString(b));
    proc.send(a, { t: 'add', n: 1 });
    t.equal(await get(b), 0);
  });
  t.end();
});

void t.test('monitors', (t) => {
  void t.test('fire once, with the exit reason', QUICK, async (t) => {
    const { pid } = await startCounter(t);
    const seen: ExitReason[] = [];
    proc.monitor(pid, (r) => seen.push(r));
    proc.monitor(pid, (r) => seen.push(r));
    proc.send(pid, { t: 'stop', reason: 'done' });
    await settle();
    proc.kill(pid);
    await proc.shutdown(pid, 'shutdown', 100);
    await settle();
    t.same(seen, ['done', 'done']);
  });

  void t.test('on a dead pid: noproc, asynchronously', QUICK, async (t) => {
    const { pid } = await startCounter(t);
    await proc.shutdown(pid, 'shutdown', 'infinity');
    const seen: ExitReason[] = [];
    proc.monitor(pid, (r) => seen.push(r));
    t.same(seen, [], 'not inside monitor()');
    await settle(1);
    t.same(seen, ['noproc']);
  });

  void t.test('demonitor before the exit: the monitor never fires', QUICK, async (t) => {
    const { pid } = await startCounter(t);
    let fired = 0;
    const mref = proc.monitor(pid, () => fired++);
    t.equal(proc.demonitor(mref), true);
    t.equal(proc.demonitor(mref), false, 'a second demonitor finds nothing');
    proc.kill(pid);
    await settle();
    t.equal(fired, 0);
  });

  void t.test('demonitor after the monitor fired is false', QUICK, async (t) => {
    const { pid } = await startCounter(t);
    const mref = proc.monitor(pid, () => undefined);
    proc.kill(pid);
    t.equal(proc.demonitor(mref), false);
  });

  void t.test('a monitor set during init fires with the reason init failed', QUICK, async (t) => {
    const system = newSystem(t);
    let reason: ExitReason | undefined;
    const r = await proc.start(system, {
      ...counter(),
      init: (ctx) => {
        proc.monitor(ctx.self, (why) => {
          reason = why;
        });
        return { stop: 'bad_config' };
      },
    });
    t.same(r, { error: 'bad_config' });
    t.equal(reason, 'bad_config');
  });

  void t.test('a throwing monitor callback is logged and the others still fire', QUICK, async (t) => {
    const logger = recordingLogger();
    const { pid } = await startCounter(t, { events: [] }, { logger });
    let second = false;
    proc.monitor(pid, () => {
      throw new Error('listener bug');
    });
    proc.monitor(pid, () => {
      second = true;
    });
    proc.kill(pid);
    t.equal(second, true);
    t.ok(logger.entries.some((e) => e.level === 'error' && /exit listener threw/.test(e.msg ?? '')));
  });

  // A process keeps its one watcher (a session's held call) without a Set, and a Set once it has
  // more: whatever the order of monitors, demonitors and calls, each live one is told once and a
  // removed one never.
  void t.test('watchers_one_then_many: monitors and a call added and removed in any order', QUICK, async (t) => {
    const { pid } = await startCounter(t);
    const seen: string[] = [];
    const m1 = proc.monitor(pid, () => seen.push('m1'));
    const m2 = proc.monitor(pid, () => seen.push('m2'));
    t.equal(proc.demonitor(m1), true, 'the first of two');
    t.equal(proc.demonitor(m1), false, 'already removed');
    t.equal(proc.demonitor(m2), true, 'the last one');
    const m3 = proc.monitor(pid, () => seen.push('m3'));
    const held = proc.call(pid, (from: From<number>): Msg => ({ t: 'hold', from }), 5000);
    await settle();
    t.equal(proc.demonitor(m3), true, 'a monitor beside a call');
    proc.monitor(pid, () => seen.push('m4'));
    const m5 = proc.monitor(pid, () => seen.push('m5'));
    t.equal(proc.demonitor(m5), true);
    proc.send(pid, { t: 'stop', reason: 'done' });
    const err = await rejectionOf(held);
    t.match(err, { code: 'ERR_OTP_EXIT' }, 'the call in flight is told');
    t.same(seen, ['m4'], 'only the live monitor fires, once');
  });

  // OTP's proc_lib: an init that fails is an exit like any other, so the monitors set during init
  // get their DOWN; a monitor whose callback throws must neither keep start() from settling nor
  // keep the other monitors from firing. Raced against a real timer: the bug was a start that
  // never settled, which would otherwise only show as the file's timeout.
  for (const [how, init] of [
    ['returns { stop }', (): { stop: ExitReason } => ({ stop: 'bad_config' })],
    ['throws', (): never => {
      const reason: unknown = 'bad_config'; // a thrown string is kept as the exit reason
      throw reason;
    }],
  ] as const) {
    void t.test(`init_fail_with_throwing_monitor: init ${how}`, QUICK, async (t) => {
      const system = newSystem(t);
      const logger = recordingLogger();
      let second: ExitReason | undefined;
      const starting = proc.start(system, {
        ...counter(),
        init: (ctx) => {
          proc.monitor(ctx.self, () => {
            throw new Error('listener bug');
          });
          proc.monitor(ctx.self, (why) => {
            second = why;
          });
          return init();
        },
      }, { logger });
      let timer: ReturnType<typeof setTimeout> | undefined;
      const hung = new Promise<'hung'>((resolve) => {
        timer = setTimeout(resolve, 500, 'hung');
      });
      t.teardown(() => clearTimeout(timer));
      t.same(await Promise.race([starting, hung]), { error: 'bad_config' }, 'start settles with the reason');
      t.equal(second, 'bad_config', 'the other monitor still fires');
      t.ok(logger.entries.some((e) => e.level === 'error' && /exit listener threw/.test(e.msg ?? '')), 'the throw is logged');
    });
  }
  t.end();
});

void t.test('links (onExit)', (t) => {
  void t.test('called once, after terminate, with the pid and the reason', QUICK, async (t) => {
    const events: string[] = [];
    const exits: [unknown, ExitReason][] = [];
    const { pid } = await startCounter(t, { events }, {
      onExit: (who, reason) => {
        events.push('onExit');
        exits.push([who, reason]);
      },
    });
    proc.send(pid, { t: 'throw' });
    await down(pid);
    proc.kill(pid);
    await settle();
    t.same(events.slice(1), ['terminate:abnormal', 'terminated', 'onExit']);
    t.equal(exits.length, 1);
    t.equal(exits[0]?.[0], pid);
    t.match(exits[0]?.[1], { message: 'boom' });
  });

  void t.test('startLink spawns under the link\'s parent and reports the exit to its onExit', QUICK, async (t) => {
    const system = newSystem(t);
    const parent = okPid(await proc.start(system, counter()));
    const exits: ExitReason[] = [];
    const child = okPid(await proc.startLink({ parent, onExit: (_p, r) => exits.push(r) }, counter()));
    t.ok(proc.actorPath(child).startsWith(`${proc.actorPath(parent)}/`), 'the child is under the parent');
    await proc.shutdown(child, 'shutdown', 1000);
    t.same(exits, ['shutdown']);
  });

  void t.test('a failed init sends no exit signal: the start result carries the reason', QUICK, async (t) => {
    const system = newSystem(t);
    let exits = 0;
    const r = await proc.start(system, { ...counter(), init: () => ({ stop: 'nope' }) }, { onExit: () => exits++ });
    t.same(r, { error: 'nope' });
    t.equal(exits, 0);
  });
  t.end();
});

void t.test('shutdown', (t) => {
  void t.test('a terminate within the timeout: resolves after terminate, reason kept, timer cleared', QUICK, async (t) => {
    const clock = new ManualClock();
    const { pid, hooks } = await startCounter(t);
    const gone = down(pid);
    await proc.shutdown(pid, { shutdown: 'app_stop' }, 1000, clock);
    t.same(hooks.events.slice(1), ['terminate:abnormal', 'terminated']);
    t.same(await gone, { shutdown: 'app_stop' });
    t.equal(clock.pendingCount, 0);
  });

  void t.test('a terminate that hangs past the timeout is killed when the clock reaches it', QUICK, async (t) => {
    const clock = new ManualClock();
    const hang = deferred();
    const hooks: Hooks = { events: [], terminateGate: hang.promise };
    const exits: ExitReason[] = [];
    const { pid } = await startCounter(t, hooks, { onExit: (_p, r) => exits.push(r) });
    const gone = down(pid);
    let done = false;
    const stopping = proc.shutdown(pid, 'shutdown', 1000, clock).then(() => {
      done = true;
    });
    await settle();
    t.same(hooks.events.slice(1), ['terminate:shutdown'], 'terminate is running');
    clock.advance(999);
    await settle();
    t.equal(done, false, 'still waiting for terminate at 999 ms');
    t.ok(proc.isAlive(pid));
    clock.advance(1);
    await stopping;
    t.equal(await gone, 'killed');
    t.notOk(proc.isAlive(pid));
    hang.resolve();
    await settle();
    t.same(exits, ['killed'], 'the link heard once, even when terminate finished late');
  });

  void t.test('brutal_kill: no terminate, reason killed', QUICK, async (t) => {
    const { pid, hooks } = await startCounter(t);
    const gone = down(pid);
    await proc.shutdown(pid, 'shutdown', 'brutal_kill');
    t.equal(await gone, 'killed');
    t.same(hooks.events.slice(1), []);
  });

  void t.test('infinity: waits for terminate however long, with no timer', QUICK, async (t) => {
    const clock = new ManualClock();
    const hang = deferred();
    const { pid, hooks } = await startCounter(t, { events: [], terminateGate: hang.promise });
    let done = false;
    const stopping = proc.shutdown(pid, 'shutdown', 'infinity', clock).then(() => {
      done = true;
    });
    await settle();
    t.equal(clock.pendingCount, 0);
    await settle();
    t.equal(done, false);
    hang.resolve();
    await stopping;
    t.same(hooks.events.slice(1), ['terminate:shutdown', 'terminated']);
  });

  void t.test('of a dead process resolves at once', QUICK, async (t) => {
    const { pid } = await startCounter(t);
    proc.kill(pid);
    await proc.shutdown(pid, 'shutdown', 1000);
    t.notOk(proc.isAlive(pid));
  });
  t.end();
});

void t.test('call', (t) => {
  // callWith: the call an HTTP request makes, its waiter told once of whichever comes first.
  void t.test('callWith: the reply, the exit, the timeout or noproc, each told once to the waiter', QUICK, async (t) => {
    const told: string[] = [];
    const waiter = (name: string): proc.CallWaiter<number> => ({
      resolved: (v) => told.push(`${name}:ok:${v}`),
      rejected: (err) => told.push(`${name}:${err.code}`),
    });
    const { pid } = await startCounter(t);
    proc.send(pid, { t: 'add', n: 7 });
    proc.callWith(pid, (from: From<number>): Msg => ({ t: 'get', from }), 1000, waiter('get'));
    proc.callWith(pid, (from: From<number>): Msg => ({ t: 'hold', from }), 1000, waiter('held'));
    proc.callWith(pid, (from: From<number>): Msg => ({ t: 'hold', from }), 0, waiter('timeout'));
    await settle();
    await new Promise((r) => setTimeout(r, 5));
    t.same(told, ['get:ok:7', 'timeout:ERR_OTP_TIMEOUT'], 'a reply, and a timeout');
    proc.send(pid, { t: 'stop', reason: 'done' });
    await settle();
    t.same(told.slice(2), ['held:ERR_OTP_EXIT'], 'the held one is told of the exit, once');
    proc.callWith(pid, (from: From<number>): Msg => ({ t: 'get', from }), 1000, waiter('dead'));
    t.same(told.slice(3), ['dead:ERR_OTP_NOPROC'], 'noproc at once, before callWith returns');
    await new Promise((r) => setTimeout(r, 5));
    t.equal(told.length, 4, 'nothing told twice');
  });

  void t.test('timeout 0 is an ERR_OTP_TIMEOUT, not a bare error', QUICK, async (t) => {
    const { pid } = await startCounter(t);
    const err = await rejectionOf(proc.call(pid, (from: From<number>): Msg => ({ t: 'hold', from }), 0));
    t.equal(err.code, 'ERR_OTP_TIMEOUT');
  });

  void t.test('timeout Infinity waits for the reply, as OTP\'s infinity', QUICK, async (t) => {
    const { pid } = await startCounter(t);
    let outcome = 'waiting';
    void proc.call(pid, (from: From<number>): Msg => ({ t: 'hold', from }), Infinity).then(
      () => (outcome = 'replied'),
      (err: unknown) => (outcome = `rejected: ${String(err)}`),
    );
    // Long enough for any zero-delay timer to have fired; a call to a live server cannot end here.
    await new Promise((resolve) => setTimeout(resolve, 30));
    t.equal(outcome, 'waiting');
    // The caller is released by the exit (its monitor), which also clears nact's query timer.
    proc.kill(pid);
    await settle();
    t.match(outcome, /ERR_OTP_EXIT|exited during call/);
  });
  t.end();
});

void t.test('what a handler throws becomes the exit reason', (t) => {
  const thrower = (value: unknown): ProcessCore<number, 'go'> => ({
    label: 'thrower',
    init: () => ({ ok: 0 }),
    handle: () => {
      throw value;
    },
    terminate: () => undefined,
  });
  void t.test('an Error is kept as it is', QUICK, async (t) => {
    const system = newSystem(t);
    const err = new TypeError('bad');
    const pid = okPid(await proc.start(system, thrower(err)));
    const gone = down(pid);
    proc.send(pid, 'go');
    t.equal(await gone, err);
  });
  void t.test('a string is kept as the reason', QUICK, async (t) => {
    const system = newSystem(t);
    const pid = okPid(await proc.start(system, thrower('shutdown')));
    const gone = down(pid);
    proc.send(pid, 'go');
    t.equal(await gone, 'shutdown');
  });
  void t.test('anything else is wrapped in an Error that describes it', QUICK, async (t) => {
    const system = newSystem(t);
    const pid = okPid(await proc.start(system, thrower({ why: 42 })));
    const gone = down(pid);
    proc.send(pid, 'go');
    t.match(await gone, { message: 'non-error thrown: {"why":42}' });
  });
  t.end();
});

void t.test('getState (sys:get_state)', (t) => {
  void t.test('reads the state after everything sent before it', QUICK, async (t) => {
    const { pid } = await startCounter(t);
    proc.send(pid, { t: 'add', n: 5 });
    t.same(await proc.getState(pid), { n: 5 });
  });
  void t.test('ERR_OTP_NOPROC for a dead pid', QUICK, async (t) => {
    const { pid } = await startCounter(t);
    proc.kill(pid);
    t.match(await rejectionOf(proc.getState(pid)), { code: 'ERR_OTP_NOPROC' });
  });
  void t.test('ERR_OTP_TIMEOUT when the process is busy past the timeout', QUICK, async (t) => {
    const system = newSystem(t);
    const gate = deferred();
    const pid = okPid(await proc.start(system, {
      label: 'busy',
      init: () => ({ ok: 0 }),
      handle: async (n: number) => {
        await gate.promise;
        return { next: n };
      },
      terminate: () => undefined,
    }));
    t.teardown(() => gate.resolve());
    proc.send(pid, 'work');
    t.match(await rejectionOf(proc.getState(pid, 20)), { code: 'ERR_OTP_TIMEOUT' });
  });
  t.end();
});

void t.test('isAlive and registeredName follow the process', QUICK, async (t) => {
  const { pid } = await startCounter(t, { events: [] }, { name: 'counter' });
  t.equal(proc.isAlive(pid), true);
  t.equal(proc.registeredName(pid), 'counter');
  proc.kill(pid);
  t.equal(proc.isAlive(pid), false);
  t.equal(proc.registeredName(pid), undefined);
});

void t.test('pid_to_string: a label, else a registered name, else <0.N.0>; never the actor path', (t) => {
  void t.test('an anonymous process prints as <0.N.0>, a new N per incarnation', QUICK, async (t) => {
    const system = newSystem(t);
    const a = okPid(await proc.start(system, counter()));
    const b = okPid(await proc.start(system, counter()));
    t.match(proc.pidToString(a), /^<0\.\d+\.0>$/);
    t.not(proc.pidToString(a), proc.pidToString(b));
    t.equal(String(a), proc.pidToString(a), 'String(pid) says the same');
    t.equal(JSON.stringify({ pid: a }), `{"pid":"${proc.pidToString(a)}"}`, 'and JSON');
    t.notMatch(proc.pidToString(a), /counter|gen_server/, 'not the behaviour\'s label');
  });

  void t.test('a registered process prints as its name while it runs under it', QUICK, async (t) => {
    const { pid } = await startCounter(t, { events: [] }, { name: 'stock' });
    t.equal(proc.pidToString(pid), 'stock');
    t.equal(`${String(pid)}`, 'stock');
    proc.kill(pid);
    t.match(proc.pidToString(pid), /^<0\.\d+\.0>$/, 'dead, the name is free again: the pid prints as itself');
  });

  void t.test('a label names a process, before its registered name (a name may hold a secret: session:<sid>)', QUICK, async (t) => {
    const { pid } = await startCounter(t, { events: [] }, { label: 'comet_sup/connection_sup/c1' });
    t.equal(proc.pidToString(pid), 'comet_sup/connection_sup/c1');
    const named = await startCounter(t, { events: [] }, { name: 'session:secret', label: 'session:tag' });
    t.equal(proc.pidToString(named.pid), 'session:tag', 'the label wins over the registered name');
    t.equal(proc.registeredName(named.pid), 'session:secret', 'which is still what whereis finds it by');
  });

  void t.test('crash logs and call errors name the process so', QUICK, async (t) => {
    const logger = recordingLogger();
    const { pid } = await startCounter(t, { events: [] }, { name: 'stock', logger });
    const gone = down(pid);
    proc.send(pid, { t: 'throw' });
    await gone;
    t.match(logger.entries.find((e) => e.msg === 'counter crashed'), { obj: { pid: 'stock' } });
    t.match((await rejectionOf(get(pid))), { message: /no process <0\.\d+\.0>/ });
  });
  t.end();
});

void t.test('children_die_with_parent: a process under a killed process ends too, and its monitors fire', async (t) => {
  const { start: startServer } = await import('../lib/otp/gen_server.js');
  const { kill, monitor, isAlive } = await import('../lib/otp/proc_lib.js');
  const { startSystem, stopSystem } = await import('../lib/otp/nact.js');
  const system = startSystem();
  t.teardown(() => stopSystem(system));
  const idle = { init: () => ({ ok: 0 }) };
  const parent = await startServer(system, idle, undefined);
  if (!('ok' in parent)) throw new Error('parent failed');
  const child = await startServer(parent.ok as never, idle, undefined);
  if (!('ok' in child)) throw new Error('child failed');
  const down = new Promise((resolve) => monitor(child.ok, resolve));
  kill(parent.ok);
  t.equal(await down, 'killed');
  t.notOk(isAlive(child.ok));
});
