/**
 * The only module that imports `nact`. Everything else in comet-fsm talks to the actor runtime
 * through these typed wrappers, so that nact's CommonJS shape (its time constants are not ESM
 * named exports) and its loose typings (`sender` is untyped) stay in one place.
 *
 * Replies never use nact's implicit `sender` nor its `query`: a call carries its reply slot (a
 * proc_lib `From`) in the message, and the reply settles the caller's promise (see gen.ts).
 */
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
  nact.stop(system);
}

export interface SpawnProps<S, M> {
  readonly initialState: S;
  /** Decide what nact does after a handler throws or rejects; comet-fsm always stops the actor. */
  readonly onCrash: (msg: M | undefined, err: unknown, ctx: CrashContext) => symbol | Promise<symbol>;
}

/**
 * Spawn a stateful actor. The behaviour is nact's: `(state, msg) => nextState`, one message at a time;
 * a thrown error or rejected promise goes to `onCrash`.
 */
export function spawnActor<S, M>(
  parent: ParentRef,
  name: string,
  handle: (state: S, msg: M) => S | Promise<S>,
  props: SpawnProps<S, M>,
): Ref<M> {
  // Passed through as given (pass shared functions): every wrapper here would cost each actor a
  // closure, and so does nact's default afterStop.
  return nact.spawn<ParentRef, typeof handle>(parent, handle, name, {
    initialState: props.initialState,
    onCrash: props.onCrash as (msg: M | undefined, err: Error | undefined, ctx: CrashContext) => symbol | Promise<symbol>,
    afterStop: noop,
  });
}

const noop = (): void => {};

// nact's dispatch builds a fresh `Nobody` sender (three objects) for every message sent without
// one. comet-fsm never reads the sender (replies travel in the message), so every message shares
// this one, shaped as nact's own.
const NOBODY = Object.freeze({ system: Object.freeze({ name: undefined }), path: Object.freeze({ parts: Object.freeze([]) }), type: 'nobody' });
const dispatchFrom = nact.dispatch as <M>(ref: Ref<M>, msg: M, sender: typeof NOBODY) => void;

/** Put a message in an actor's mailbox. A message to a stopped actor is dropped, as in Erlang. */
export function dispatch<M>(ref: Ref<M>, msg: M): void {
  dispatchFrom(ref, msg, NOBODY);
}

/** Stop an actor at once: nothing more is taken from its mailbox. */
export function stopActor(ref: Ref<unknown>): void {
  nact.stop(ref);
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
