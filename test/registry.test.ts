/**
 * The process registry (Erlang's register/whereis): names per actor system, already_started,
 * a name freed on every kind of exit, and a new incarnation taking the name over.
 */
import t from 'tap';
import * as gs from '../lib/otp/gen_server.js';
import { isAlive, kill, registeredName } from '../lib/otp/proc_lib.js';
import { clearRegistry, register, unregister, whereis } from '../lib/otp/registry.js';
import { down, newSystem, okPid, type Teardown, QUICK } from './fixtures/otp.js';

type Cast = 'inc' | 'crash';

function named(inits: { count: number }): gs.GenServer<number, number, 'get', number, Cast> {
  return {
    init: (n) => {
      inits.count++;
      return { ok: n };
    },
    handleCall: (_r, _f, n) => ({ reply: n, state: n }),
    handleCast: (msg, n) => {
      if (msg === 'crash') throw new Error('crash');
      return { noreply: true, state: n + 1 };
    },
  };
}

async function startNamed(t: Teardown, system = newSystem(t), name = 'session_ids', n = 0) {
  const inits = { count: 0 };
  const r = await gs.start(system, named(inits), n, { name });
  return { system, r, inits };
}

void t.test('a named start registers the pid: whereis and registeredName find it', QUICK, async (t) => {
  const { system, r } = await startNamed(t);
  const pid = okPid(r);
  t.equal(whereis(system, 'session_ids'), pid);
  t.equal(registeredName(pid), 'session_ids');
  t.equal(whereis(system, 'nobody'), undefined);
});

void t.test('a second start under a taken name: { error: { already_started: pid } }, its init never runs', QUICK, async (t) => {
  const first = await startNamed(t);
  const pid = okPid(first.r);
  const second = await startNamed(t, first.system);
  t.same(second.r, { error: { already_started: pid } });
  t.ok('error' in second.r && (second.r.error as { already_started: unknown }).already_started === pid);
  t.equal(second.inits.count, 0);
  t.equal(whereis(first.system, 'session_ids'), pid);
  t.equal(await gs.call(pid, 'get'), 0, 'the first holder is untouched');
});

void t.test('names are per actor system', QUICK, async (t) => {
  const a = await startNamed(t);
  const b = await startNamed(t);
  t.ok('ok' in a.r && 'ok' in b.r);
  t.not(whereis(a.system, 'session_ids'), whereis(b.system, 'session_ids'));
});

void t.test('the name is freed on every exit', (t) => {
  const exits: [string, (pid: gs.ServerRef<'get', number, Cast>) => Promise<void>][] = [
    ['stop', (pid) => gs.stop(pid)],
    ['crash', async (pid) => {
      const gone = down(pid);
      gs.cast(pid, 'crash');
      await gone;
    }],
    ['kill', (pid) => {
      kill(pid);
      return Promise.resolve();
    }],
  ];
  for (const [how, exit] of exits) {
    void t.test(how, QUICK, async (t) => {
      const { system, r } = await startNamed(t);
      const pid = okPid(r);
      await exit(pid);
      t.notOk(isAlive(pid));
      t.equal(whereis(system, 'session_ids'), undefined);
      t.equal(registeredName(pid), undefined);
    });
  }
  void t.test('init failure', QUICK, async (t) => {
    const system = newSystem(t);
    t.same(await gs.start(system, { init: () => ({ stop: 'no' }) }, undefined, { name: 'session_ids' }), { error: 'no' });
    t.equal(whereis(system, 'session_ids'), undefined);
  });
  t.end();
});

void t.test('a new incarnation re-registers the name; the stale pid never reaches it', QUICK, async (t) => {
  const { system, r } = await startNamed(t, undefined, 'session_ids', 100);
  const old = okPid(r);
  await gs.stop(old);
  const again = await startNamed(t, system, 'session_ids', 0);
  const fresh = okPid(again.r);
  t.not(fresh, old);
  t.equal(whereis(system, 'session_ids'), fresh);
  gs.cast(old, 'inc');
  t.equal(await gs.call(fresh, 'get'), 0, 'a cast to the old pid is dropped, not delivered to the new process');
});

void t.test('the registry functions', QUICK, async (t) => {
  const system = newSystem(t);
  const a = okPid(await gs.start(system, named({ count: 0 }), 0));
  const b = okPid(await gs.start(system, named({ count: 0 }), 0));
  t.equal(register(system, 'x', a), undefined, 'a free name is taken');
  t.equal(register(system, 'x', b), a, 'a taken name returns its holder');
  unregister(system, 'x', b);
  t.equal(whereis(system, 'x'), a, 'unregister by a pid that does not hold the name changes nothing');
  unregister(system, 'x', a);
  t.equal(whereis(system, 'x'), undefined);
  register(system, 'y', a);
  clearRegistry(system);
  t.equal(whereis(system, 'y'), undefined, 'clearRegistry forgets every name of the system');
});
