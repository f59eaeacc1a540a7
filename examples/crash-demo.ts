#!/usr/bin/env node
/**
 * `npm run crash-demo`: a supervision tree you can watch. For each strategy it starts a small
 * supervisor, prints the tree, makes one child's handler throw, and prints what the supervisor
 * did (its reports) and the tree after. It ends with a restart-intensity breach: the supervisor
 * gives up, stops its children and exits with `shutdown`. Finishes by itself in a few seconds.
 */
import { genServer, monitor, startSystem, stopSystem, type Logger, type Pid } from '../lib/otp/index.js';
import * as sup from '../supervisors/index.js';

// ---------------------------------------------------------------------------------------------
// A worker: counts `inc` casts; a `crash` cast makes its handler throw.
// ---------------------------------------------------------------------------------------------

type Cast = 'inc' | 'crash';
const worker: genServer.GenServer<string, { name: string; n: number }, never, never, Cast> = {
  init: (name) => ({ ok: { name, n: 0 } }),
  handleCast: (msg, s) => {
    if (msg === 'crash') throw new Error(`${s.name} crashed on purpose`);
    return { noreply: true, state: { ...s, n: s.n + 1 } };
  },
};

const spec = (id: string): sup.ChildSpec => ({ id, start: (link) => genServer.startLink(link, worker, id) });

// ---------------------------------------------------------------------------------------------
// Printing
// ---------------------------------------------------------------------------------------------

const PAUSE_MS = 200;
const pause = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
const say = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};
/**
 * A child_terminated report says what the supervisor decided (`restart`) before it checks its
 * restart intensity, so the line waits for what followed: the restart, or the supervisor giving up.
 */
let terminated: string | undefined;
const settleTerminated = (outcome: string): void => {
  if (terminated !== undefined) say(`${terminated} -> ${outcome}`);
  terminated = undefined;
};

/** The supervisor's own reports, one line each: what it saw and what it did. */
const logger: Logger = {
  // Progress reports (a child started) are logged at debug, as OTP keeps them below its default level.
  debug: (obj) => {
    const started = (obj as { started?: { id: string; pid: string } }).started;
    if (!started) return;
    settleTerminated('restart');
    say(`    supervisor: started ${started.id} (${started.pid.slice(started.pid.lastIndexOf('/') + 1)})`);
  },
  warn: () => {},
  info: () => {},
  error: (obj) => {
    const r = obj as Partial<sup.SupervisorReport>;
    if (!r.errorContext) return;
    // A shutdown report is about the supervisor itself (it gives up), the others about one child.
    const who = r.errorContext === 'shutdown' ? r.supervisor : r.childPath ?? r.child;
    const line = `    supervisor: ${r.errorContext} ${who ?? ''} (${r.reason ?? ''})`;
    if (r.errorContext === 'child_terminated' && r.action === 'restart') {
      terminated = line;
      return;
    }
    if (r.errorContext === 'shutdown') settleTerminated('no restart: the restart intensity is reached');
    say(`${line} -> ${r.action ?? ''}`);
  },
};

/** Print the tree (sup.renderTree: children by id, in start order); with `before`, restarts are marked. */
async function tree(s: sup.SupRef, name: string, before?: sup.TreeNode): Promise<sup.TreeNode> {
  const now = await sup.supervisionTree(s, name);
  for (const line of sup.renderTree(now, before)) say(`  ${line}`);
  return now;
}

async function crashChild(s: sup.SupRef, pid: Pid<never>, what: string): Promise<void> {
  say(`  -> ${what}`);
  const gone = new Promise<void>((resolve) => monitor(pid, () => resolve()));
  genServer.cast(pid as genServer.ServerRef<never, never, Cast>, 'crash');
  await gone;
  await sup.countChildren(s); // behind the child's EXIT in the supervisor's mailbox: the restart is done
  settleTerminated('restart'); // dynamic children have no progress report
}

// ---------------------------------------------------------------------------------------------
// The demo
// ---------------------------------------------------------------------------------------------

const system = startSystem('crash-demo');

for (const strategy of ['one_for_one', 'one_for_all', 'rest_for_one'] as const) {
  say(`== ${strategy}: crash b ==`);
  const name = `${strategy}_sup`;
  const r = await sup.startSupervisor(system, { strategy, intensity: 3, period: 5 }, [spec('a'), spec('b'), spec('c')], { name, logger });
  if (!('ok' in r)) throw new Error('demo supervisor did not start');
  const s = r.ok;
  const before = await tree(s, name);
  await pause();
  const b = (await sup.whichChildren(s)).find((x) => x.id === 'b')?.pid;
  if (typeof b !== 'object') throw new Error('b is not running');
  await crashChild(s, b, "b's handler throws");
  await tree(s, name, before);
  await sup.stop(s);
  say();
  await pause();
}

{
  say('== simple_one_for_one: three dynamic children, crash the second ==');
  // Each dynamic child registers a name: whichChildren reports it, so a restarted one is recognisable.
  const dyn: sup.ChildSpec<[string]> = { id: 'worker', start: (link, name) => genServer.startLink(link, worker, name, { name: `worker_${name}` }) };
  const r = await sup.startSupervisor(system, { strategy: 'simple_one_for_one', intensity: 3, period: 5 }, [dyn], { name: 'workers_sup', logger });
  if (!('ok' in r)) throw new Error('demo supervisor did not start');
  const s = r.ok;
  const pids: Pid<never>[] = [];
  for (const name of ['x', 'y', 'z']) {
    const c = await sup.startChild(s, [name]);
    if ('ok' in c) pids.push(c.ok);
  }
  const before = await tree(s, 'workers_sup');
  await pause();
  if (pids[1]) await crashChild(s, pids[1], "the second child's handler throws");
  await tree(s, 'workers_sup', before);
  await sup.stop(s);
  say();
  await pause();
}

{
  say('== intensity: 1 restart in 5 s allowed; crash a twice ==');
  let exited!: (reason: unknown) => void;
  const gone = new Promise<unknown>((resolve) => {
    exited = resolve;
  });
  const r = await sup.startSupervisor(system, { strategy: 'one_for_one', intensity: 1, period: 5 }, [spec('a'), spec('b')], {
    name: 'app_sup', logger, onExit: (_pid, reason) => exited(reason),
  });
  if (!('ok' in r)) throw new Error('demo supervisor did not start');
  const s = r.ok;
  await tree(s, 'app_sup');
  await pause();
  const first = (await sup.whichChildren(s)).find((x) => x.id === 'a')?.pid;
  if (typeof first === 'object') await crashChild(s, first, "a's handler throws (restart 1 of 1)");
  const second = (await sup.whichChildren(s)).find((x) => x.id === 'a')?.pid;
  if (typeof second === 'object') {
    say("  -> a's handler throws again (restart 2 > intensity 1)");
    genServer.cast(second as genServer.ServerRef<never, never, Cast>, 'crash');
  }
  say(`  supervisor gave up and exited: ${String(await gone)} (its children were stopped first, last started first)`);
}

stopSystem(system);
say();
say('done');
