/**
 * Links and exit signals between any two processes, with Erlang's rules (erts' process_SUITE and
 * the reference manual's "Receiving Exit Signals"): a linked process that does not trap exits dies
 * with the same reason unless it is `normal`, and runs no terminate; one that traps gets
 * `{'EXIT', Pid, Reason}` in handleInfo; `exit(pid, 'kill')` is untrappable and reaches the links
 * as `killed`; `exit(pid, 'normal')` does nothing to a process that does not trap. Under a
 * supervisor, a worker linked to a sibling dies with it and both are restarted.
 */
import t from 'tap';
import type { ExitReason } from '../lib/otp/errors.js';
import * as fsm from '../lib/otp/gen_fsm.js';
import * as gs from '../lib/otp/gen_server.js';
import * as proc from '../lib/otp/proc_lib.js';
import type { ExitMessage, Pid } from '../lib/otp/proc_lib.js';
import { whereis } from '../lib/otp/registry.js';
import * as sup from '../supervisors/supervisor.js';
import { down, newSystem, okPid, rejectionOf, settle, type Teardown, QUICK } from './fixtures/otp.js';

type Call =
  | { readonly op: 'exits' }
  | { readonly op: 'trap'; readonly on: boolean }
  | { readonly op: 'link'; readonly pid: Pid<never> }
  | { readonly op: 'exit'; readonly pid: Pid<never>; readonly reason: ExitReason };
type Cast = { readonly op: 'stop'; readonly reason: ExitReason };
type Node = gs.ServerRef<Call, readonly ExitMessage[] | boolean | 'ok', Cast, ExitMessage>;

/** A server that records the EXIT messages it traps, and (in `terminated`) the terminates it runs. */
function node(name: string, terminated: string[]): gs.GenServer<{ trap: boolean }, readonly ExitMessage[], Call, readonly ExitMessage[] | boolean | 'ok', Cast, ExitMessage> {
  return {
    init({ trap }, ctx) {
      ctx.processFlag('trap_exit', trap);
      return { ok: [] };
    },
    handleCall(req, _from, exits, ctx) {
      switch (req.op) {
        case 'exits':
          return { reply: exits, state: exits };
        case 'trap':
          return { reply: ctx.processFlag('trap_exit', req.on), state: exits };
        case 'link':
          ctx.link(req.pid);
          return { reply: 'ok', state: exits };
        case 'exit':
          ctx.exit(req.pid, req.reason);
          return { reply: 'ok', state: exits };
      }
    },
    handleCast: (msg, exits) => ({ stop: msg.reason, state: exits }),
    handleInfo: (exit, exits) => ({ noreply: true, state: [...exits, exit] }),
    terminate(reason) {
      terminated.push(`${name}:${typeof reason === 'string' ? reason : JSON.stringify(reason)}`);
    },
  };
}

async function nodes(t: Teardown, ...traps: boolean[]): Promise<{ pids: Node[]; terminated: string[] }> {
  const system = newSystem(t);
  const terminated: string[] = [];
  const pids: Node[] = [];
  for (const [i, trap] of traps.entries()) pids.push(okPid(await gs.start(system, node(`n${i}`, terminated), { trap })));
  return { pids, terminated };
}

const exitsOf = async (pid: Node): Promise<readonly ExitMessage[]> => (await gs.call(pid, { op: 'exits' })) as readonly ExitMessage[];

void t.test('link_then_exit: a linked process that does not trap exits dies with the same reason, without terminate', QUICK, async (t) => {
  const { pids: [a, b], terminated } = await nodes(t, false, false);
  if (!a || !b) throw new Error('no nodes');
  proc.link(a, b);
  const aDown = down(a);
  gs.cast(b, { op: 'stop', reason: 'boom' });
  t.equal(await aDown, 'boom', 'a died of b\'s reason');
  t.same(terminated, ['n1:boom'], 'only b ran terminate: an exit signal ends a non-trapping process at once');
});

void t.test('links are both ways: the linker dies, the linked one follows', QUICK, async (t) => {
  const { pids: [a, b] } = await nodes(t, false, false);
  if (!a || !b) throw new Error('no nodes');
  await gs.call(a, { op: 'link', pid: b });
  const bDown = down(b);
  gs.cast(a, { op: 'stop', reason: { shutdown: 'x' } });
  t.same(await bDown, { shutdown: 'x' });
});

void t.test('normal_exit: a normal exit of a linked process leaves a non-trapping one running', QUICK, async (t) => {
  const { pids: [a, b] } = await nodes(t, false, false);
  if (!a || !b) throw new Error('no nodes');
  proc.link(a, b);
  gs.cast(b, { op: 'stop', reason: 'normal' });
  await down(b);
  await settle();
  t.equal(proc.isAlive(a), true);
  t.same(await exitsOf(a), []);
});

void t.test('trap_exit: a trapping process gets {EXIT, Pid, Reason} in handleInfo and lives on', QUICK, async (t) => {
  const { pids: [a, b, c], terminated } = await nodes(t, true, false, false);
  if (!a || !b || !c) throw new Error('no nodes');
  proc.link(a, b);
  proc.link(a, c);
  gs.cast(b, { op: 'stop', reason: 'boom' });
  gs.cast(c, { op: 'stop', reason: 'normal' });
  await Promise.all([down(b), down(c)]);
  t.same(await exitsOf(a), [
    { tag: 'EXIT', pid: b, reason: 'boom' },
    { tag: 'EXIT', pid: c, reason: 'normal' },
  ], 'both exits, normal included, as messages');
  t.equal(proc.isAlive(a), true);
  t.same(terminated, ['n1:boom', 'n2:normal']);
});

void t.test('process_flag(trap_exit) returns the old value', QUICK, async (t) => {
  const { pids: [a] } = await nodes(t, false);
  if (!a) throw new Error('no nodes');
  t.equal(await gs.call(a, { op: 'trap', on: true }), false);
  t.equal(await gs.call(a, { op: 'trap', on: false }), true);
});

void t.test('t_exit_2_other: exit(Pid, Reason) ends a non-trapping process with that reason, no terminate', QUICK, async (t) => {
  const { pids: [a], terminated } = await nodes(t, false);
  if (!a) throw new Error('no nodes');
  const aDown = down(a);
  proc.exit(a, 'foo');
  t.equal(await aDown, 'foo');
  t.same(terminated, []);
});

void t.test('t_exit_2_other_normal: exit(Pid, normal) does nothing to a non-trapping process; a trapping one gets it', QUICK, async (t) => {
  const { pids: [a, b] } = await nodes(t, false, true);
  if (!a || !b) throw new Error('no nodes');
  proc.exit(a, 'normal');
  await gs.call(a, { op: 'exit', pid: b, reason: 'normal' });
  t.equal(proc.isAlive(a), true);
  t.same(await exitsOf(b), [{ tag: 'EXIT', pid: a, reason: 'normal' }], 'the EXIT names the sender');
});

void t.test('kill is untrappable and reaches the links as killed', QUICK, async (t) => {
  const { pids: [a, b, c] } = await nodes(t, true, false, true);
  if (!a || !b || !c) throw new Error('no nodes');
  proc.link(a, b);
  proc.link(a, c);
  const [aDown, bDown] = [down(a), down(b)];
  proc.exit(a, 'kill');
  t.equal(await aDown, 'killed', 'trapping did not save it');
  t.equal(await bDown, 'killed', 'a non-trapping link dies of killed');
  t.same(await exitsOf(c), [{ tag: 'EXIT', pid: a, reason: 'killed' }], 'a trapping link gets killed as a message');
});

void t.test('unlink: no exit signal passes any more', QUICK, async (t) => {
  const { pids: [a, b] } = await nodes(t, false, false);
  if (!a || !b) throw new Error('no nodes');
  proc.link(a, b);
  proc.unlink(b, a);
  gs.cast(b, { op: 'stop', reason: 'boom' });
  await down(b);
  await settle();
  t.equal(proc.isAlive(a), true);
});

void t.test('link_fail: linking to a dead process is noproc', QUICK, async (t) => {
  const { pids: [a, b, dead] } = await nodes(t, false, true, false);
  if (!a || !b || !dead) throw new Error('no nodes');
  gs.cast(dead, { op: 'stop', reason: 'normal' });
  await down(dead);
  t.throws(() => proc.link(a, dead), { code: 'ERR_OTP_NOPROC' }, 'a non-trapping caller gets the noproc error');
  t.equal(proc.isAlive(a), true);
  proc.link(b, dead);
  t.same(await exitsOf(b), [{ tag: 'EXIT', pid: dead, reason: 'noproc' }], 'a trapping caller gets {EXIT, Pid, noproc}');
  const err = await rejectionOf(gs.call(a, { op: 'link', pid: dead }));
  t.equal(err.code, 'ERR_OTP_EXIT', 'ctx.link to a dead process from a non-trapping server: it crashes');
});

void t.test('gen_fsm: a trapping FSM gets the EXIT in handleInfo, with its state and data', QUICK, async (t) => {
  const system = newSystem(t);
  type Ev = { readonly type: 'peek'; readonly from: proc.From<readonly string[]> };
  const machine: fsm.GenFsm<void, 'only', readonly string[], Ev> = {
    init: (_args, ctx) => {
      ctx.processFlag('trap_exit', true);
      return { ok: 'only', data: [] };
    },
    states: {
      only(ev, data, ctx) {
        ctx.reply(ev.from, data);
        return { next: 'only', data };
      },
    },
    handleInfo: (exit, state, data) => ({ next: state, data: [...data, `${state}:${typeof exit.reason === 'string' ? exit.reason : 'abnormal'}`] }),
  };
  const f = okPid(await fsm.start(system, machine, undefined));
  const { pids: [b] } = await nodes(t, false);
  if (!b) throw new Error('no nodes');
  proc.link(f, b);
  gs.cast(b, { op: 'stop', reason: 'boom' });
  await down(b);
  t.same(await fsm.syncSendEvent(f, (from: proc.From<readonly string[]>): Ev => ({ type: 'peek', from }), 1000), ['only:boom']);
});

void t.test('a worker linked to a sibling dies with it; the supervisor restarts both', QUICK, async (t) => {
  const system = newSystem(t);
  const terminated: string[] = [];
  const worker = (name: string, linkTo?: string): sup.ChildSpec => ({
    id: name,
    start: (link) => gs.startLink(link, {
      ...node(name, terminated),
      init(_args, ctx) {
        const sibling = linkTo === undefined ? undefined : whereis(system, linkTo);
        if (sibling) ctx.link(sibling as Pid<never>);
        return { ok: [] };
      },
    }, { trap: false }, { name }),
  });
  const r = await sup.startSupervisor(system, { strategy: 'one_for_one', intensity: 5, period: 60 }, [worker('w1'), worker('w2', 'w1')]);
  if (!('ok' in r)) throw new Error('supervisor did not start');
  t.teardown(() => sup.stop(r.ok));
  const w1 = whereis(system, 'w1') as Node;
  const w2 = whereis(system, 'w2') as Node;
  const w2Down = down(w2);
  gs.cast(w1, { op: 'stop', reason: 'boom' });
  t.equal(await w2Down, 'boom', 'w2 died of w1\'s reason');
  t.same(terminated, ['w1:boom'], 'w2 ran no terminate: it did not trap exits');
  await settle();
  const rows = await sup.whichChildren(r.ok);
  const pids = new Map(rows.map((row) => [row.id, row.pid]));
  t.not(pids.get('w1'), w1, 'w1 restarted');
  t.not(pids.get('w2'), w2, 'w2 restarted too');
  t.ok(pids.get('w2') !== undefined && proc.isAlive(pids.get('w2') as Pid<never>));
});
