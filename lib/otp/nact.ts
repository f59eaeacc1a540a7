/**
 * The only module that imports `nact`. Everything else in comet-fsm talks to the actor runtime
 * through these typed wrappers, so that nact's CommonJS shape (its time constants are not ESM
 * named exports) and its loose typings (`sender` is untyped) stay in one place.
 *
 * Replies never use nact's implicit `sender` nor its `query`: a call carries its reply slot (a
 * proc_lib `From`) in the message, and the reply settles the caller's promise (see gen.ts).
 *
 * The actors comet-fsm spawns are `CometActor`s, a subclass of nact 7.6.2's own `Actor` (reached
 * through `nact/lib/actor.js`; nact is pinned to that version): nact's refs, paths, children and
 * supervision, with a scheduler of our own (a microtask drain under a reduction budget) and
 * without nact's per-message context, path walk and `Immediate`. Other nact actors in the
 * process are untouched. Why, and what it buys: docs/benchmarks.md.
 */
import { createRequire } from 'node:module';
import { inspect } from 'node:util';
import nact from 'nact';
import type { Ref as NactRef, ActorSystemRef, SupervisionContext } from 'nact';

/** An opaque reference to a nact actor that accepts messages of type `M`. */
export type Ref<M> = NactRef<M>;
/** A reference to a running actor system (the root every tree is spawned under). */
export type SystemRef = ActorSystemRef;
/** Anything an actor can be spawned under: the system or another actor. */
export type ParentRef = NactRef<never> | NactRef<unknown>;

/** nact's supervision decisions, as returned from `onCrash`. */
export type CrashContext = SupervisionContext<unknown, ParentRef>;

/** nact's time constants, re-exported as plain numbers of milliseconds. */
export const milliseconds: number = nact.milliseconds;
export const seconds: number = nact.seconds;
export const minutes: number = nact.minutes;

/**
 * Start a nact actor system with logging off (comet-fsm logs through its own logger).
 * @example
 * const system = startSystem('comet');
 */
export function startSystem(name?: string): SystemRef {
  return name === undefined ? nact.start() : nact.start(name);
}

/** Stop a whole actor system. Supervisors should stop their own children first (see supervisor.ts). */
export function stopSystem(system: SystemRef): void {
  // nact's system stop only forgets the system (see CometActor's stop): our actors, reached
  // through their refs, are stopped first.
  const concrete = nactInternals?.findConcrete(system);
  if (concrete !== undefined) stopOwnDescendants(concrete.children);
  nact.stop(system);
}

export interface SpawnProps<S, M> {
  readonly initialState: S;
  /** Decide what nact does after a handler throws or rejects; comet-fsm always stops the actor. */
  readonly onCrash: (msg: M | undefined, err: unknown, ctx: CrashContext) => symbol | Promise<symbol>;
}

/**
 * The nact version whose `Actor` internals `CometActor` builds on. With any other version
 * installed, comet-fsm spawns plain nact actors (nact's own scheduling: correct, slower).
 */
export const NACT_VERSION = '7.6.2';

/**
 * How many messages the actors' scheduler runs in one turn of the event loop before it yields
 * to I/O (`setImmediate`): BEAM's reductions, one message being one reduction. Large enough that
 * a broadcast to thousands of sessions runs in one turn, small enough that a flood or a
 * ping-pong between actors cannot keep the event loop from reading sockets for long.
 */
export const TURN_MESSAGE_BUDGET = 4000;
/** How many messages one actor runs before going to the back of the run queue (fairness). */
export const ACTOR_MESSAGE_BUDGET = 64;

// nact 7.6.2's internals that CometActor relies on (lib/actor.js, lib/system-map.js).
interface NactMailbox {
  push(item: unknown): number;
  shift(): unknown;
  readonly length: number;
}
interface NactActor {
  parent: NactActor | undefined;
  readonly name: string;
  readonly system: unknown;
  readonly reference: NactRef<unknown>;
  readonly f: (state: unknown, msg: unknown) => unknown;
  state: unknown;
  stopped: boolean;
  busy: boolean;
  readonly mailbox: NactMailbox;
  readonly shutdownPeriod: number | undefined;
  children: Map<string, NactActor>;
  childReferences: Map<string, NactRef<unknown>>;
  assertNotStopped(): boolean;
  handleFault(msg: unknown, sender: unknown, err: unknown): Promise<void>;
  dispatch(msg: unknown, sender?: unknown): void;
  processNext(): void;
  stop(): void;
  childSpawned(child: NactActor): void;
  childStopped(child: NactActor): void;
}
interface NactActorProps {
  readonly initialState: unknown;
  readonly onCrash: unknown;
  readonly afterStop: unknown;
}
type NactActorClass = new (parent: NactActor, name: string, system: unknown, f: (state: unknown, msg: unknown) => unknown, props: NactActorProps) => NactActor;

const requireCjs = createRequire(import.meta.url);
const nactInternals = ((): { Actor: NactActorClass; findConcrete: (ref: ParentRef | SystemRef) => NactActor | undefined } | undefined => {
  try {
    if ((requireCjs('nact/package.json') as { version?: string }).version !== NACT_VERSION) return undefined;
    const { Actor } = requireCjs('nact/lib/actor.js') as { Actor: NactActorClass };
    const systemMap = requireCjs('nact/lib/system-map.js') as { find(systemName: string, ref: unknown): NactActor | undefined };
    return { Actor, findConcrete: (ref) => systemMap.find(systemNameOf(ref), ref) };
  } catch {
    return undefined;
  }
})();

/** Where a ref of an actor comet-fsm spawned points at its actor; `undefined` once stopped. */
const ACTOR = Symbol('comet-fsm.actor');
type OwnRef = { [ACTOR]?: CometActorLike | undefined };
interface CometActorLike {
  dispatch(msg: unknown): void;
  stop(): void;
}

type Runnable = CometActorLike & { runSome(n: number): number; queued: boolean; readonly runnable: boolean };
/** The actors with messages to run, in order: slots `head` to `tail` (exclusive). The array keeps
 *  its slots when the queue empties (a shorter length would drop its backing store, and the next
 *  turn's first push would allocate one again: about a hundred bytes per request), up to
 *  {@link KEPT_RUN_QUEUE_SLOTS}. */
const runQueue: (Runnable | undefined)[] = [];
let head = 0;
let tail = 0;
/** Slots the run queue keeps while empty; a longer one (a broadcast's) is let go. */
const KEPT_RUN_QUEUE_SLOTS = 1024;

function enqueue(a: Runnable): void {
  if (tail < runQueue.length) runQueue[tail] = a;
  else runQueue.push(a);
  tail++;
}
/** 'micro': a drain is queued as a microtask; 'check': the budget ran out, the next drain is a setImmediate. */
let turn: 'idle' | 'micro' | 'check' = 'idle';

const SETTLED = Promise.resolve();

function drain(): void {
  let budget = TURN_MESSAGE_BUDGET;
  try {
    while (head < tail && budget > 0) {
      const a = runQueue[head];
      runQueue[head++] = undefined;
      if (a === undefined) continue;
      a.queued = false;
      budget -= a.runSome(Math.min(ACTOR_MESSAGE_BUDGET, budget));
      // Not if its own handler sent it a message: that queued it again already.
      if (a.runnable && !a.queued) {
        a.queued = true;
        enqueue(a);
      }
    }
  } finally {
    // Also after a throw (a bug, not a crashing handler: those are caught), so nothing stalls.
    if (head < tail) {
      if (head > 1024) {
        runQueue.copyWithin(0, head, tail);
        runQueue.fill(undefined, tail - head, tail);
        tail -= head;
        head = 0;
      }
      turn = 'check';
      setImmediate(drain);
    } else {
      if (runQueue.length > KEPT_RUN_QUEUE_SLOTS) runQueue.length = 0;
      head = 0;
      tail = 0;
      turn = 'idle';
    }
  }
}

const NO_CHILDREN: ReadonlyMap<string, never> = new Map<string, never>();

/**
 * A nact actor as comet-fsm runs it. Everything nact users see is nact's (the ref, the path, the
 * place in its parent's children, supervision through `onCrash`, `stop`); what changes is how
 * its messages are run, in ways the actors comet-fsm spawns never notice:
 *
 * - the mailbox runs from a microtask, under a shared budget (`TURN_MESSAGE_BUDGET`), not from
 *   one `setImmediate` per message: a request read in the poll phase is handled before the
 *   event loop moves on, so what it allocated dies young instead of surviving a scavenge;
 * - the handler is called with `(state, msg)` only: no context object (and no copy of the
 *   children Map) per message, since comet-fsm's handlers take none;
 * - its children Map is made with its first child (a session has none; nact makes two);
 * - a ref points at its actor, so a message does not walk the path from the system down.
 */
function defineCometActor(Actor: NactActorClass): new (parent: NactActor, name: string, f: (state: unknown, msg: unknown) => unknown, props: NactActorProps) => NactActor & CometActorLike {
  class CometActor extends Actor {
    queued = false;
    kids: Map<string, NactActor> | undefined = undefined;

    constructor(parent: NactActor, name: string, f: (state: unknown, msg: unknown) => unknown, props: NactActorProps) {
      super(parent, name, parent.system, f, props);
    }

    get runnable(): boolean {
      return !this.busy && !this.stopped && this.mailbox.length > 0;
    }

    override dispatch(msg: unknown): void {
      // A stopped actor's ref no longer leads here; this is nact's assert, kept as a no-op.
      if (this.stopped) return;
      this.mailbox.push(msg);
      if (!this.busy && !this.queued) this.#enqueue();
    }

    #enqueue(): void {
      this.queued = true;
      enqueue(this);
      if (turn === 'idle') {
        turn = 'micro';
        // A reaction on a settled promise, not queueMicrotask: Node wraps each queueMicrotask
        // callback in an AsyncResource and a bound function (about 700 bytes per request here).
        void SETTLED.then(drain);
      }
    }

    /** Run at most `n` messages; how many it ran. Stops early at a crash or a handler's promise. */
    runSome(n: number): number {
      const f = this.f;
      let i = 0;
      while (i < n && !this.busy && !this.stopped && this.mailbox.length > 0) {
        const msg = this.mailbox.shift();
        i++;
        let next: unknown;
        try {
          next = f(this.state, msg);
        } catch (err) {
          this.#fault(msg, err);
          break;
        }
        if (next instanceof Promise) {
          this.busy = true;
          next.then(
            (state: unknown) => {
              this.state = state;
              this.processNext();
            },
            (err: unknown) => this.#fault(msg, err),
          );
          break;
        }
        this.state = next;
      }
      return i;
    }

    // As nact: busy until onCrash's decision has been carried out (resume and reset come back
    // through processNext; stop leaves it busy and stopped).
    #fault(msg: unknown, err: unknown): void {
      this.busy = true;
      void this.handleFault(msg, undefined, err);
    }

    /** nact's "take the next message", called after a handler's promise and by resume/reset. */
    override processNext(): void {
      if (this.stopped) return;
      this.busy = false;
      if (this.mailbox.length > 0 && !this.queued) this.#enqueue();
    }

    override stop(): void {
      if (this.stopped) return;
      const kids = this.kids;
      super.stop();
      (this.reference as OwnRef)[ACTOR] = undefined;
      // nact 7.6.2 means to stop the children here, but its stop looks each child up by the
      // concrete actor rather than its ref and finds none: they are only cut off from the path.
      // Ours are reached through their refs, so they are stopped for real.
      if (kids !== undefined) stopOwnDescendants(kids);
    }

    override childSpawned(child: NactActor): void {
      (this.kids ??= new Map()).set(child.name, child);
    }

    override childStopped(child: NactActor): void {
      this.kids?.delete(child.name);
    }
  }
  // nact's constructor assigns `children` and `childReferences` a fresh Map each; on our
  // prototype these are accessors, so the assignments are dropped and the Map is made with the
  // first child (childReferences, read only when nact builds a crash or stop context, derived).
  Object.defineProperties(CometActor.prototype, {
    children: {
      get(this: CometActor) {
        return this.kids ?? NO_CHILDREN;
      },
      set() {},
    },
    childReferences: {
      get(this: CometActor) {
        const kids = this.kids;
        return kids === undefined ? NO_CHILDREN : new Map([...kids].map(([k, v]) => [k, v.reference]));
      },
      set() {},
    },
  });
  return CometActor;
}

const CometActor = nactInternals && defineCometActor(nactInternals.Actor);

/** Stop every actor of ours among `children` and, below plain nact actors, their descendants. */
function stopOwnDescendants(children: ReadonlyMap<string, NactActor>): void {
  for (const child of [...children.values()]) {
    if (CometActor !== undefined && child instanceof CometActor) child.stop();
    else stopOwnDescendants(child.children);
  }
}

/**
 * Spawn a stateful actor. The behaviour is nact's: `(state, msg) => nextState`, one message at a time;
 * a thrown error or rejected promise goes to `onCrash`. The handler gets no nact context.
 */
export function spawnActor<S, M>(
  parent: ParentRef,
  name: string,
  handle: (state: S, msg: M) => S | Promise<S>,
  props: SpawnProps<S, M>,
): Ref<M> {
  // Passed through as given (pass shared functions): every wrapper here would cost each actor a
  // closure, and so does nact's default afterStop.
  const nactProps = {
    initialState: props.initialState,
    onCrash: props.onCrash as (msg: M | undefined, err: Error | undefined, ctx: CrashContext) => symbol | Promise<symbol>,
    afterStop: noop,
  };
  if (CometActor === undefined || nactInternals === undefined) return nact.spawn<ParentRef, typeof handle>(parent, handle, name, nactProps);
  // nact's spawn (systemMap.applyOrThrowIfStopped), with our parent found through its ref.
  const p = ACTOR in parent ? (parent as OwnRef)[ACTOR] : nactInternals.findConcrete(parent);
  if (p === undefined) throw new Error('Actor has stopped or never even existed');
  const actor = new CometActor(p as NactActor, name, handle as (state: unknown, msg: unknown) => unknown, nactProps);
  Object.defineProperty(actor.reference, ACTOR, { value: actor, writable: true, enumerable: false, configurable: true });
  return actor.reference;
}

const noop = (): void => {};

// nact's dispatch builds a fresh `Nobody` sender (three objects) for every message sent without
// one. comet-fsm never reads the sender (replies travel in the message), so every message shares
// this one, shaped as nact's own.
const NOBODY = Object.freeze({ system: Object.freeze({ name: undefined }), path: Object.freeze({ parts: Object.freeze([]) }), type: 'nobody' });
const dispatchFrom = nact.dispatch as <M>(ref: Ref<M>, msg: M, sender: typeof NOBODY) => void;

/** Put a message in an actor's mailbox. A message to a stopped actor is dropped, as in Erlang. */
export function dispatch<M>(ref: Ref<M>, msg: M): void {
  const own = (ref as OwnRef)[ACTOR];
  if (own !== undefined) own.dispatch(msg);
  else if (!(ACTOR in ref)) dispatchFrom(ref, msg, NOBODY);
  // else: one of ours, stopped: dropped, as nact drops a message to a stopped actor.
}

/** Stop an actor at once: nothing more is taken from its mailbox. */
export function stopActor(ref: Ref<unknown>): void {
  const own = (ref as OwnRef)[ACTOR];
  if (own !== undefined) own.stop();
  else if (!(ACTOR in ref)) nact.stop(ref);
}

/** The actor whose handler threw: nact's crash context carries it as `self`, untyped. */
export function crashedActor(ctx: CrashContext): Ref<unknown> {
  return (ctx as unknown as { self: Ref<unknown> }).self;
}

/** The decision that tells nact to stop the crashed actor. */
export function stopDecision(ctx: CrashContext): symbol {
  return ctx.stop as symbol;
}

/** The name of the actor system a ref belongs to (registered names are per system). */
export function systemNameOf(ref: Ref<unknown> | SystemRef): string {
  return (ref as unknown as { system: { name: string } }).system.name;
}

/** The actor's path as text (`system://a/b/c`), for logs and `whichChildren` listings. */
export function pathOf(ref: Ref<unknown>): string {
  return String((ref as unknown as { path: { toString(): string } }).path);
}

let printer: ((ref: Ref<unknown>) => string | undefined) | undefined;
let printerProto: object | undefined;

/**
 * Make actor refs print as `print` says (`String(pid)`, `JSON.stringify`, `util.inspect`): a pid
 * as its process's name rather than as nact's object graph. Installed once on the prototype nact
 * makes its refs from, so it costs a ref nothing; a ref `print` does not know prints as its path.
 */
export function printRefsWith(ref: Ref<unknown>, print: (ref: Ref<unknown>) => string | undefined): void {
  printer = print;
  const proto = Object.getPrototypeOf(ref) as object | null;
  if (proto === null || proto === printerProto || proto === Object.prototype) return;
  printerProto = proto;
  const show = function (this: Ref<unknown>): string {
    return printer?.(this) ?? pathOf(this);
  };
  Object.defineProperties(proto, {
    toString: { value: show, configurable: true, writable: true },
    toJSON: { value: show, configurable: true, writable: true },
    [inspect.custom]: { value: show, configurable: true, writable: true },
  });
}
