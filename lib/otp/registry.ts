/**
 * Erlang's local process registry (`register/2`, `whereis/1`, `unregister/1`), one per actor
 * system. A registered name follows the process, not the incarnation: when a supervisor restarts
 * a named child, the name points at the new one once its init has run.
 */
import { systemNameOf, type ParentRef, type Ref } from './nact.js';

const tables = new Map<string, Map<string, Ref<unknown>>>();

function table(system: string): Map<string, Ref<unknown>> {
  let t = tables.get(system);
  if (!t) tables.set(system, (t = new Map<string, Ref<unknown>>()));
  return t;
}

/** Register `pid` under `name` in the system of `anyRef`. Returns the current holder if the name is taken. */
export function register(anyRef: ParentRef, name: string, pid: Ref<unknown>): Ref<unknown> | undefined {
  const t = table(systemNameOf(anyRef));
  const holder = t.get(name);
  if (holder !== undefined) return holder;
  t.set(name, pid);
  return undefined;
}

/** Remove `name` if it still points at `pid` (a newer incarnation keeps its registration). */
export function unregister(anyRef: ParentRef, name: string, pid: Ref<unknown>): void {
  const t = tables.get(systemNameOf(anyRef));
  if (t?.get(name) === pid) t.delete(name);
}

/** The process registered under `name` in the system of `anyRef`, if any. */
export function whereis(anyRef: ParentRef, name: string): Ref<unknown> | undefined {
  return tables.get(systemNameOf(anyRef))?.get(name);
}

/** Forget every name of a system (called when the system stops). */
export function clearRegistry(anyRef: ParentRef): void {
  tables.delete(systemNameOf(anyRef));
}
