/**
 * The layering check (run by test/layering.test.ts): every import of lib/, supervisors/, bin/ and
 * examples/ points down the layers, lib/client imports only itself, and no file imports itself
 * back through others. Type-only imports count: a circle of types is still a circle to a reader.
 *
 *   lib/otp <- supervisors <- lib/comet <- lib/cluster <- lib/http <- lib/observer <- lib/server.ts, lib/index.ts <- bin, examples
 *   lib/client <- lib/observer/page (the observer's browser script), bin, examples
 *
 * lib/observer/page is browser code: it imports only itself and lib/client; lib/observer may
 * import it (its protocol types) and bin may too.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/** Folders checked, relative to the repository root. */
export const CHECKED_DIRS = ['lib', 'supervisors', 'bin', 'examples'] as const;

/** A file's layer: higher layers may import lower ones, never the reverse. */
export function layerOf(file: string): { readonly name: string; readonly rank: number } {
  if (file.startsWith('lib/otp/')) return { name: 'lib/otp', rank: 0 };
  if (file.startsWith('supervisors/')) return { name: 'supervisors', rank: 1 };
  if (file.startsWith('lib/comet/')) return { name: 'lib/comet', rank: 2 };
  // Above the comet application (it replaces its session router), below the server that wires it.
  if (file.startsWith('lib/cluster/')) return { name: 'lib/cluster', rank: 2.5 };
  if (file.startsWith('lib/http/')) return { name: 'lib/http', rank: 3 };
  if (file.startsWith('lib/client/')) return { name: 'lib/client', rank: -1 };
  if (file.startsWith('lib/observer/page/')) return { name: 'lib/observer/page', rank: 4 };
  if (file.startsWith('lib/observer/')) return { name: 'lib/observer', rank: 4 };
  if (file === 'lib/server.ts' || file === 'lib/index.ts') return { name: 'lib/server.ts', rank: 5 };
  if (file.startsWith('bin/') || file.startsWith('examples/')) return { name: 'bin, examples', rank: 6 };
  return { name: 'unknown', rank: -2 };
}

/** The relative .ts imports of every checked file (node builtins and packages left out). */
export function readImports(root: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const dir of CHECKED_DIRS) {
    for (const entry of readdirSync(path.join(root, dir), { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || !entry.name.endsWith('.ts') || entry.name.endsWith('.d.ts')) continue;
      const abs = path.join(entry.parentPath, entry.name);
      const file = path.relative(root, abs).split(path.sep).join('/');
      const info = ts.preProcessFile(readFileSync(abs, 'utf8'), true, true);
      const targets = info.importedFiles
        .map((f) => f.fileName)
        .filter((spec) => spec.startsWith('.'))
        .map((spec) => path.posix.normalize(path.posix.join(path.posix.dirname(file), spec)).replace(/\.js$/, '.ts'));
      graph.set(file, [...new Set(targets)]);
    }
  }
  return graph;
}

/** Imports that point the wrong way, as "from -> to (why)". */
export function layerViolations(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const out: string[] = [];
  for (const [from, targets] of graph) {
    const a = layerOf(from);
    for (const to of targets) {
      const b = layerOf(to);
      if (a.name === 'unknown' || b.name === 'unknown') out.push(`${from} -> ${to} (outside the layers)`);
      else if (a.name === 'lib/client' && b.name !== 'lib/client') out.push(`${from} -> ${to} (lib/client imports only lib/client)`);
      else if (a.name === 'lib/observer/page' && b.name !== 'lib/observer/page' && b.name !== 'lib/client') out.push(`${from} -> ${to} (lib/observer/page imports only itself and lib/client)`);
      else if (b.name === 'lib/client' && a.name !== 'lib/client' && a.name !== 'lib/observer/page' && a.rank < 6) out.push(`${from} -> ${to} (only bin, examples and the observer page use lib/client)`);
      else if (b.name !== 'lib/client' && b.rank > a.rank) out.push(`${from} -> ${to} (${a.name} must not import ${b.name})`);
    }
  }
  return out;
}

/** Every import circle between files, each as its path "a -> b -> a" (one per circle found). */
export function importCycles(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const cycles: string[] = [];
  const done = new Set<string>();
  const onStack: string[] = [];
  const visit = (file: string): void => {
    const at = onStack.indexOf(file);
    if (at !== -1) {
      cycles.push([...onStack.slice(at), file].join(' -> '));
      return;
    }
    if (done.has(file)) return;
    onStack.push(file);
    for (const to of graph.get(file) ?? []) visit(to);
    onStack.pop();
    done.add(file);
  };
  for (const file of [...graph.keys()].sort()) visit(file);
  return cycles;
}
