/**
 * Randomized (fast-check): a storm of crashes within the restart intensity leaves the tree with the
 * same shape, every child running; past the intensity the tree stops, and every incarnation that
 * ever started ran its terminate exactly once.
 */
import t from 'tap';
import fc from 'fast-check';
import { ManualClock } from '../lib/otp/clock.js';
import { startSystem, stopSystem } from '../lib/otp/nact.js';
import { isAlive, pidToString, type Pid } from '../lib/otp/proc_lib.js';
import { clearRegistry } from '../lib/otp/registry.js';
import type { ExitReason } from '../lib/otp/errors.js';
import * as sup from '../supervisors/supervisor.js';
import { Lab } from './fixtures/crash_worker.js';
import { crash, report, snapshot, supSpec, type TreeNode } from './fixtures/sup_tree.js';

type Strat = 'one_for_one' | 'one_for_all' | 'rest_for_one';
interface Shape {
  readonly top: Strat;
  readonly mid: Strat;
  readonly topWorkers: number;
  readonly midWorkers: number;
  /** Where `mid` sits among top's children. */
  readonly midAt: number;
}
interface Hit {
  readonly inMid: boolean;
  readonly index: number;
  readonly how: 'throw' | 'reject';
}

const strat = fc.constantFrom<Strat>('one_for_one', 'one_for_all', 'rest_for_one');
const shapeArb: fc.Arbitrary<Shape> = fc.record({
  top: strat, mid: strat, topWorkers: fc.integer({ min: 1, max: 3 }), midWorkers: fc.integer({ min: 1, max: 3 }), midAt: fc.nat({ max: 3 }),
});
const hitArb = (inMid?: boolean): fc.Arbitrary<Hit> => fc.record({
  inMid: inMid === undefined ? fc.boolean() : fc.constant(inMid), index: fc.nat({ max: 2 }), how: fc.constantFrom<'throw' | 'reject'>('throw', 'reject'),
});

let runs = 0;

interface Tree {
  readonly top: sup.SupRef;
  readonly lab: Lab;
  readonly exited: Promise<ExitReason>;
  close(): Promise<void>;
}

async function build(shape: Shape, topIntensity: number, midIntensity: number): Promise<Tree> {
  const system = startSystem(`storm-${process.pid}-${++runs}`);
  const clock = new ManualClock(); // never advanced: every restart falls inside the window
  const lab = new Lab();
  const opts = { clock };
  const topSpecs: sup.ChildSpec[] = Array.from({ length: shape.topWorkers }, (_, i) => lab.worker(`t${i}`));
  const midSpecs = Array.from({ length: shape.midWorkers }, (_, i) => lab.worker(`m${i}`));
  topSpecs.splice(Math.min(shape.midAt, topSpecs.length), 0, supSpec('mid', { strategy: shape.mid, intensity: midIntensity, period: 5 }, midSpecs, opts));
  let onExit!: (r: ExitReason) => void;
  const exited = new Promise<ExitReason>((resolve) => {
    onExit = resolve;
  });
  const r = await sup.startSupervisor(system, { strategy: shape.top, intensity: topIntensity, period: 5 }, topSpecs, { ...opts, onExit: (_p, reason) => onExit(reason) });
  if (!('ok' in r)) throw new Error('tree did not start');
  const top = r.ok;
  return {
    top, lab, exited,
    async close() {
      await sup.stop(top);
      clearRegistry(system);
      stopSystem(system);
    },
  };
}

/** The running workers of the supervisor a hit aims at, in start order. */
async function workersOf(top: sup.SupRef, inMid: boolean): Promise<{ owner: sup.SupRef; pids: Pid<never>[] }> {
  const rows = [...(await sup.whichChildren(top))].reverse();
  const owner = inMid ? (rows.find((r) => r.id === 'mid')?.pid as sup.SupRef) : top;
  const own = inMid ? [...(await sup.whichChildren(owner))].reverse() : rows.filter((r) => r.type === 'worker');
  return { owner, pids: own.flatMap((r) => (typeof r.pid === 'object' ? [r.pid] : [])) };
}

/** Crash the worker a hit names and wait until its supervisor has dealt with it. */
async function strike(top: sup.SupRef, hit: Hit, last: boolean): Promise<void> {
  const { owner, pids } = await workersOf(top, hit.inMid);
  const pid = pids[hit.index % pids.length];
  await crash(pid, hit.how);
  // A call behind the EXIT in the owner's mailbox: the restart is done when it returns.
  if (!last) await sup.countChildren(owner);
}

const shapeOf = (n: TreeNode): unknown => ({ id: n.id, running: n.status === 'running', children: n.children?.map(shapeOf) });
const pidsOf = (n: TreeNode): string[] => [n.pid ? pidToString(n.pid) : n.status, ...(n.children ?? []).flatMap(pidsOf)];

/** Every incarnation that started has run terminate once (or is the one still running). */
function balanced(lab: Lab, ids: readonly string[], running: boolean): boolean {
  return ids.every((id) => lab.entries(`init:${id}`).length === lab.entries(`terminate:${id}:`).length + (running ? 1 : 0));
}

const idsOf = (shape: Shape): string[] => [
  ...Array.from({ length: shape.topWorkers }, (_, i) => `t${i}`), ...Array.from({ length: shape.midWorkers }, (_, i) => `m${i}`),
];

void t.test('a storm of crashes within the intensity leaves the tree the same shape', async (t) => {
  // Each crash is one restart in its own supervisor; with intensity >= the storm size nothing escalates.
  let reported = false;
  await fc.assert(fc.asyncProperty(shapeArb, fc.array(hitArb(), { minLength: 1, maxLength: 8 }), async (shape, storm) => {
    const tree = await build(shape, storm.length, storm.length);
    try {
      const before = await snapshot(tree.top, 'top');
      for (const [i, hit] of storm.entries()) await strike(tree.top, hit, i === storm.length - 1);
      const after = await snapshot(tree.top, 'top');
      if (!reported) {
        reported = true;
        report(t, before, `${storm.length} crashes (${shape.top} over ${shape.mid})`, after);
      }
      const restarted = pidsOf(after).filter((p) => !pidsOf(before).includes(p)).length;
      return JSON.stringify(shapeOf(after)) === JSON.stringify(shapeOf(before))
        && isAlive(tree.top)
        && restarted >= 1
        && balanced(tree.lab, idsOf(shape), true);
    } finally {
      await tree.close();
    }
  }), { numRuns: 100 });
  t.pass('100 random trees and storms');
});

void t.test('past the intensity the tree stops, and every terminate ran', async (t) => {
  // n crashes in one supervisor with intensity n-1 stop it; under a top with intensity 0 the whole tree stops with shutdown.
  let reported = false;
  await fc.assert(fc.asyncProperty(shapeArb, fc.boolean(), fc.integer({ min: 1, max: 6 }), fc.array(hitArb(), { minLength: 6, maxLength: 6 }), async (shape, inMid, n, hits) => {
    const storm = hits.slice(0, n).map((h) => ({ ...h, inMid }));
    const tree = await build(shape, inMid ? 0 : n - 1, inMid ? n - 1 : 100);
    try {
      const before = await snapshot(tree.top, 'top');
      for (const [i, hit] of storm.entries()) await strike(tree.top, hit, i === storm.length - 1);
      const reason = await tree.exited;
      if (!reported) {
        reported = true;
        report(t, before, `${n} crashes in ${inMid ? 'mid' : 'top'} (intensity ${n - 1})${inMid ? ', top intensity 0' : ''}`, await snapshot(undefined, 'top'));
      }
      return reason === 'shutdown' && !isAlive(tree.top) && balanced(tree.lab, idsOf(shape), false);
    } finally {
      await tree.close();
    }
  }), { numRuns: 100 });
  t.pass('100 random trees and storms');
});
