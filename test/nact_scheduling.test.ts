/**
 * How lib/otp/nact.ts runs the actors comet-fsm spawns (a subclass of nact's Actor): the mailbox
 * from a microtask under a reduction budget, no context per message, children made on demand, a
 * ref that leads straight to its actor, and nact's stop. And that a plain nact actor in the same
 * process still runs as nact runs it. This test reaches into nact (its spawn and its system map)
 * to compare: the one place outside lib/otp/nact.ts that does.
 */
import { createHook } from 'node:async_hooks';
import { createRequire } from 'node:module';
import { createConnection, createServer, type Socket } from 'node:net';
import t, { type Test } from 'tap';
import nact from 'nact';
import {
  ACTOR_MESSAGE_BUDGET,
  NACT_VERSION,
  TURN_MESSAGE_BUDGET,
  dispatch,
  spawnActor,
  startSystem,
  stopActor,
  stopDecision,
  stopSystem,
  type CrashContext,
  type ParentRef,
  type Ref,
} from '../lib/otp/nact.js';

const requireCjs = createRequire(import.meta.url);

type Counted = { n: number; seen: number[] };

/** An actor whose state counts the messages it ran, and which records them in `seen`. */
const counter = (parent: ParentRef, name: string, seen: number[] = []): Ref<number> =>
  spawnActor<Counted, number>(
    parent,
    name,
    (s, msg) => {
      s.seen.push(msg);
      s.n++;
      return s;
    },
    { initialState: { n: 0, seen }, onCrash: (_m, _e, ctx) => stopDecision(ctx) },
  );

/** The concrete actor behind one of our refs (test-only: the ref's one symbol-keyed property). */
const actorOf = (ref: Ref<unknown>): Record<string, unknown> | undefined => {
  const sym = Object.getOwnPropertySymbols(ref)[0];
  return sym === undefined ? undefined : (ref as unknown as Record<symbol, Record<string, unknown> | undefined>)[sym];
};

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

const system = (t: Test): ReturnType<typeof startSystem> => {
  const s = startSystem();
  t.teardown(() => stopSystem(s));
  return s;
};

void t.test('the installed nact is the version the actor subclass was written against', async (t) => {
  t.equal((requireCjs('nact/package.json') as { version: string }).version, NACT_VERSION);
  const ref = counter(system(t), 'a');
  t.ok(actorOf(ref), 'our spawn made a CometActor, not a plain nact actor');
});

void t.test('a message runs in a microtask: before a setImmediate queued before it was sent', async (t) => {
  const seen: number[] = [];
  const ref = counter(system(t), 'a', seen);
  let atImmediate = -1;
  const imm = new Promise<void>((r) =>
    setImmediate(() => {
      atImmediate = seen.length;
      r();
    }),
  );
  dispatch(ref, 1);
  t.same(seen, [], 'not synchronously in dispatch');
  await imm;
  t.equal(atImmediate, 1, 'already handled when the immediate ran');
});

void t.test('a plain nact actor in the same process still runs from setImmediate, with its context', async (t) => {
  const s = system(t);
  const seen: unknown[] = [];
  const plain = nact.spawn(
    s,
    (state: number, msg: number, ctx: { self: unknown }) => {
      seen.push([msg, ctx.self === plain]);
      return state + 1;
    },
    'plain',
    { initialState: 0 },
  );
  let atImmediate = -1;
  const imm = new Promise<void>((r) =>
    setImmediate(() => {
      atImmediate = seen.length;
      r();
    }),
  );
  nact.dispatch(plain, 7);
  await imm;
  t.equal(atImmediate, 0, 'not yet handled when an immediate queued before it ran');
  await turn();
  t.same(seen, [[7, true]]);
});

void t.test('a flood of messages to many actors yields to the event loop past the budget, and loses nothing', async (t) => {
  const s = system(t);
  const actors = 100;
  const each = Math.ceil((3 * TURN_MESSAGE_BUDGET) / actors);
  const seen = Array.from({ length: actors }, () => [] as number[]);
  const refs = seen.map((xs, i) => counter(s, `a${i}`, xs));
  const total = (): number => seen.reduce((a, xs) => a + xs.length, 0);
  let atImmediate = -1;
  const imm = new Promise<void>((r) =>
    setImmediate(() => {
      atImmediate = total();
      r();
    }),
  );
  for (let k = 0; k < each; k++) for (const ref of refs) dispatch(ref, k);
  await imm;
  t.ok(atImmediate > 0 && atImmediate <= TURN_MESSAGE_BUDGET, `one turn ran at most the budget before the event loop went on (${atImmediate})`);
  for (let i = 0; i < 10 && total() < actors * each; i++) await turn();
  t.equal(total(), actors * each, 'every message ran');
  const inOrder = Array.from({ length: each }, (_, k) => k);
  t.ok(seen.every((xs) => xs.length === each && xs.every((x, k) => x === inOrder[k])), 'exactly once and in order, per mailbox');
});

void t.test('one actor with a long mailbox lets the others run between its slices', async (t) => {
  const s = system(t);
  const order: string[] = [];
  const mk = (name: string): Ref<number> =>
    spawnActor<undefined, number>(s, name, (st) => (order.push(name), st), { initialState: undefined, onCrash: (_m, _e, ctx) => stopDecision(ctx) });
  const busy = mk('busy');
  const quiet = mk('quiet');
  for (let k = 0; k < 3 * ACTOR_MESSAGE_BUDGET; k++) dispatch(busy, k);
  dispatch(quiet, 0);
  await turn();
  t.equal(order.indexOf('quiet'), ACTOR_MESSAGE_BUDGET, 'the quiet actor ran after the busy one\'s first slice');
  t.equal(order.length, 3 * ACTOR_MESSAGE_BUDGET + 1);
});

void t.test('actors messaging each other without end do not starve timers or socket reads', async (t) => {
  const s = system(t);
  let bounces = 0;
  let stop = false;
  const refs: Ref<number>[] = [];
  for (const name of ['ping', 'pong']) {
    refs.push(
      spawnActor<number, number>(
        s,
        name,
        (me, n) => {
          bounces++;
          if (!stop) dispatch(refs[1 - me] as Ref<number>, n + 1);
          return me;
        },
        { initialState: refs.length, onCrash: (_m, _e, ctx) => stopDecision(ctx) },
      ),
    );
  }
  const server = createServer();
  t.teardown(() => server.close());
  const read = new Promise<string>((resolve) => server.on('connection', (c: Socket) => c.once('data', (d) => resolve(d.toString()))));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  dispatch(refs[0] as Ref<number>, 0);
  const client = createConnection(port, '127.0.0.1', () => client.write('hello'));
  t.teardown(() => client.destroy());
  const timer = new Promise<number>((r) => setTimeout(() => r(bounces), 5));
  const atTimer = await timer;
  t.equal(await read, 'hello', 'the socket was read while the actors kept messaging');
  t.ok(atTimer > 0, `the timer fired while they ran (${atTimer} messages by then)`);
  stop = true;
  await turn();
  await turn();
});

void t.test('the handler gets (state, msg) only: no nact context per message', async (t) => {
  const args: number[] = [];
  const ref = spawnActor<undefined, number>(
    system(t),
    'a',
    function (this: unknown, st: undefined) {
      args.push(arguments.length, this === undefined ? 0 : 1);
      return st;
    },
    { initialState: undefined, onCrash: (_m, _e, ctx) => stopDecision(ctx) },
  );
  dispatch(ref, 1);
  await turn();
  t.same(args, [2, 0]);
});

void t.test('a message goes straight to its actor: no walk down the path, no Immediate kept', async (t) => {
  const s = system(t);
  const parent = counter(s, 'p');
  const seen: number[] = [];
  const child = counter(parent, 'c', seen);
  const sysMap = requireCjs('nact/lib/system-map.js') as { find(name: string): { find(ref: unknown): unknown } };
  const sysObj = sysMap.find((s as unknown as { system: { name: string } }).system.name);
  const find = sysObj.find.bind(sysObj);
  let walks = 0;
  sysObj.find = (ref: unknown) => (walks++, find(ref));
  for (let k = 0; k < 10; k++) dispatch(child, k);
  await turn();
  t.equal(seen.length, 10);
  t.equal(walks, 0, 'no system.find per message');
  t.equal(actorOf(child)?.immediate, undefined, 'no Immediate retained by the actor');
});

void t.test('children: no Map until the first child; nact children under ours; stop as nact stops', async (t) => {
  const s = system(t);
  const parent = counter(s, 'p');
  const actor = actorOf(parent);
  t.notOk(Object.hasOwn(actor ?? {}, 'children'), 'no children Map of its own');
  t.notOk(Object.hasOwn(actor ?? {}, 'childReferences'), 'no childReferences Map of its own');
  t.equal(actor?.kids, undefined, 'nothing made for a leaf actor');

  const childSeen: number[] = [];
  const child = counter(parent, 'c', childSeen);
  t.throws(() => counter(parent, 'c'), /already exists/, 'a second child of the same name is refused, as nact does');
  const plainSeen: number[] = [];
  const plain = nact.spawn(parent, (st: number, m: number) => (plainSeen.push(m), st), 'plain', { initialState: 0 });
  const grandSeen: number[] = [];
  const grandchild = counter(plain, 'g', grandSeen);
  nact.dispatch(plain, 1);
  await turn();
  t.same(plainSeen, [1], 'a plain nact actor under ours is found through our children');
  t.equal((actor?.children as Map<string, unknown>).size, 2);

  stopActor(parent);
  dispatch(child, 1);
  dispatch(grandchild, 1);
  nact.dispatch(plain, 2);
  await turn();
  await turn();
  t.same(childSeen, [], 'our children stopped with it: their messages are dropped');
  t.same(grandSeen, [], 'and ours below a plain nact child too');
  t.same(plainSeen, [1], 'the plain nact child is cut off, as nact 7.6.2 leaves it');
  t.equal(actorOf(child), undefined);
  t.equal(actorOf(parent), undefined, 'the ref no longer leads to the stopped actor');
  const again: number[] = [];
  const p2 = counter(s, 'p', again);
  dispatch(p2, 5);
  await turn();
  t.same(again, [5], 'the name is free again under the parent: it was removed from it');
});

void t.test('a crash: onCrash gets the actor as self, the actor stops, the others go on', async (t) => {
  const s = system(t);
  const crashed: unknown[] = [];
  const seen: number[] = [];
  const onCrash = (_m: number | undefined, err: unknown, ctx: CrashContext): symbol => {
    crashed.push([(ctx as unknown as { self: unknown }).self, (err as Error).message]);
    return stopDecision(ctx);
  };
  const sync = spawnActor<undefined, number>(
    s,
    'sync',
    (st, m) => {
      if (m === 2) throw new Error('boom');
      seen.push(m);
      return st;
    },
    { initialState: undefined, onCrash },
  );
  const async = spawnActor<undefined, number>(
    s,
    'async',
    async (st, m) => {
      await Promise.resolve();
      if (m === 12) throw new Error('later');
      seen.push(m);
      return st;
    },
    { initialState: undefined, onCrash },
  );
  const other = counter(s, 'other', seen);
  for (const m of [1, 2, 3]) dispatch(sync, m);
  for (const m of [11, 12, 13]) dispatch(async, m);
  dispatch(other, 100);
  for (let i = 0; i < 5; i++) await turn();
  t.same(seen.sort((a, b) => a - b), [1, 11, 100], 'in order up to the crash, nothing after it');
  t.same(crashed, [
    [sync, 'boom'],
    [async, 'later'],
  ]);
  dispatch(sync, 4);
  dispatch(other, 101);
  await turn();
  t.same(seen.sort((a, b) => a - b), [1, 11, 100, 101], 'the crashed actor is stopped, the other still runs');
});

void t.test("stopping the system stops our actors: a message to one after it is dropped", async (t) => {
  const s = startSystem();
  const seen: number[] = [];
  const parent = counter(s, 'p');
  const child = counter(parent, 'c', seen);
  stopSystem(s);
  dispatch(child, 1);
  await turn();
  t.same(seen, []);
  t.equal(actorOf(child), undefined);
  t.equal(actorOf(parent), undefined);
});

void t.test('an actor sending itself messages from its handler: each once, in order', async (t) => {
  const seen: number[] = [];
  const ref: Ref<number> = spawnActor<undefined, number>(
    system(t),
    'self',
    (st, m) => {
      seen.push(m);
      if (m < 200) dispatch(ref, m + 1);
      return st;
    },
    { initialState: undefined, onCrash: (_m, _e, ctx) => stopDecision(ctx) },
  );
  dispatch(ref, 0);
  dispatch(ref, 1000);
  for (let i = 0; i < 5; i++) await turn();
  t.same(seen, [0, 1000, ...Array.from({ length: 200 }, (_, k) => k + 1)]);
});

void t.test('the drain is a promise reaction, not a queueMicrotask (no AsyncResource per turn)', async (t) => {
  const ref = counter(system(t), 'a');
  let microtasks = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === 'Microtask') microtasks++;
    },
  }).enable();
  t.teardown(() => hook.disable());
  for (let k = 0; k < 10; k++) {
    dispatch(ref, k);
    await turn();
  }
  hook.disable();
  t.equal(microtasks, 0);
});
