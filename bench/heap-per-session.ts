/**
 * What one held poll keeps alive in the echo server's heap, by constructor: a heap snapshot of a
 * fresh server with no session, then one with `--sessions` held polls, both taken by the server
 * itself on SIGUSR2 (`--heapsnapshot-signal`; a snapshot collects garbage first, so only live
 * objects count). Prints the live bytes per session (loaded minus empty, divided by the held
 * polls), the total and the largest groups, and writes the table as JSON beside the snapshots.
 *
 *   npm run build && node dist/bench/heap-per-session.js [--sessions 10000] [--top 40]
 *     [--comet-cmd "node dist/bin/echo.js"] [--keep]
 *   node dist/bench/heap-per-session.js --compare EMPTY.heapsnapshot LOADED.heapsnapshot --sessions N
 *
 * Groups: an object by its constructor, a closure by its function's name, an array or a hidden
 * internal by its name (`(object properties)`, `system / Map`...), strings and code by kind.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Rig, sleep, waitHeld } from './rig.js';
import { AdminClient } from './loadgen/admin-client.js';
import { freePort, HOST, startServer, type RunningServer } from './server-proc.js';

const here = dirname(fileURLToPath(import.meta.url));

/** Live bytes and object counts of one heap, by group. */
export type HeapGroups = Map<string, { bytes: number; count: number }>;

interface Snapshot {
  readonly snapshot: { readonly meta: { readonly node_fields: string[]; readonly node_types: [string[], ...unknown[]] } };
  readonly nodes: number[];
  readonly strings: string[];
}

const STRING_TYPES = new Set(['string', 'concatenated string', 'sliced string']);

/** Sum the self size of every node of a `.heapsnapshot`, by group. */
export function groupHeap(file: string): HeapGroups {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const groups: HeapGroups = new Map();
  const nodes = snap.nodes;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + iType] ?? 0] ?? '?';
    const size = nodes[i + iSize] ?? 0;
    let key: string;
    if (STRING_TYPES.has(type)) key = `(${type})`;
    else if (type === 'code' || type === 'number' || type === 'symbol' || type === 'bigint') key = `(${type})`;
    else {
      let name = snap.strings[nodes[i + iName] ?? 0] ?? '?';
      // Object names of plain objects list their keys (`{a, b}`): keep them, they tell the shape.
      if (name.length > 80) name = `${name.slice(0, 77)}...`;
      key = `${type}: ${name}`;
    }
    const g = groups.get(key);
    if (g === undefined) groups.set(key, { bytes: size, count: 1 });
    else {
      g.bytes += size;
      g.count++;
    }
  }
  return groups;
}

export interface PerSessionRow {
  readonly group: string;
  readonly bytesPerSession: number;
  readonly countPerSession: number;
}

/** Loaded minus empty, per session, largest first. */
export function perSession(empty: HeapGroups, loaded: HeapGroups, sessions: number): { total: number; rows: PerSessionRow[] } {
  const rows: PerSessionRow[] = [];
  let total = 0;
  for (const [group, l] of loaded) {
    const e = empty.get(group) ?? { bytes: 0, count: 0 };
    const bytes = (l.bytes - e.bytes) / sessions;
    total += bytes;
    rows.push({ group, bytesPerSession: bytes, countPerSession: (l.count - e.count) / sessions });
  }
  for (const [group, e] of empty) {
    if (loaded.has(group)) continue;
    total -= e.bytes / sessions;
    rows.push({ group, bytesPerSession: -e.bytes / sessions, countPerSession: -e.count / sessions });
  }
  rows.sort((a, b) => b.bytesPerSession - a.bytesPerSession);
  return { total, rows };
}

function print(sessions: number, total: number, rows: PerSessionRow[], top: number): void {
  console.log(`live heap per held poll (${sessions} sessions): ${total.toFixed(0)} bytes`);
  console.log('| bytes / session | objects / session | group |');
  console.log('|---|---|---|');
  for (const r of rows.slice(0, top)) {
    if (Math.abs(r.bytesPerSession) < 1) break;
    console.log(`| ${r.bytesPerSession.toFixed(1)} | ${r.countPerSession.toFixed(2)} | ${r.group.replace(/\|/g, '\\|')} |`);
  }
}

/** Ask the server for a snapshot and wait until it is written (the server answers no request
 *  while it writes one); the new file's path. */
async function snapshot(server: RunningServer, dir: string): Promise<string> {
  const before = new Set(readdirSync(dir));
  process.kill(server.pid, 'SIGUSR2');
  for (let i = 0; i < 600; i++) {
    await sleep(250);
    const fresh = readdirSync(dir).filter((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    const file = fresh[0];
    if (file === undefined) continue;
    // Answered once the server is back: the snapshot is complete. Its keep-alive connection may
    // have timed out meanwhile: a failed attempt is retried.
    for (let t = 0; t < 100; t++) {
      const admin = new AdminClient({ host: HOST, port: server.port });
      const back = await admin.stats().then(() => true, () => false);
      admin.close();
      if (back) break;
      await sleep(250);
    }
    const path = join(dir, file);
    let size = -1;
    while (statSync(path).size !== size) {
      size = statSync(path).size;
      await sleep(200);
    }
    return path;
  }
  throw new Error('no heap snapshot within 150 s');
}

const main = async (): Promise<number> => {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      sessions: { type: 'string', default: '10000' },
      top: { type: 'string', default: '40' },
      'comet-cmd': { type: 'string', default: `node ${join(here, '..', 'bin', 'echo.js')}` },
      compare: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
    },
  });
  const sessions = Number(values.sessions);
  const top = Number(values.top);
  if (!Number.isSafeInteger(sessions) || sessions < 1) throw new Error('--sessions must be a positive integer');
  if (values.compare) {
    const [a, b] = positionals;
    if (a === undefined || b === undefined) throw new Error('--compare EMPTY LOADED');
    const { total, rows } = perSession(groupHeap(a), groupHeap(b), sessions);
    print(sessions, total, rows, top);
    return 0;
  }
  const dir = mkdtempSync(join(tmpdir(), 'heap-per-session-'));
  const [cmd = 'node', ...rest] = values['comet-cmd'].split(' ').filter((s) => s !== '');
  const argv = [cmd, `--heapsnapshot-signal=SIGUSR2`, `--diagnostic-dir=${dir}`, ...rest];
  const server = await startServer({ name: 'comet-fsm', argv, protocol: 'v1', path: '/comet' }, await freePort(), null);
  const rig = new Rig(server, { serverCore: null, loadCore: null, workerScript: join(here, 'loadgen', 'worker.js'), addressSeed: Math.floor(Math.random() * 200) });
  try {
    await rig.spawn(sessions);
    await sleep(500);
    const empty = await snapshot(server, dir);
    const opened = await rig.open(sessions);
    if (opened.ok === 0) throw new Error(`no session could be set up: ${opened.firstError}`);
    const admin = new AdminClient({ host: HOST, port: server.port });
    const stats = await waitHeld(admin, opened.ok, 120_000);
    admin.close();
    await sleep(500);
    const loaded = await snapshot(server, dir);
    const held = stats.held;
    const { total, rows } = perSession(groupHeap(empty), groupHeap(loaded), held);
    print(held, total, rows, top);
    writeFileSync(join(dir, 'per-session.json'), JSON.stringify({ sessions: held, total, rows }, null, 1));
    console.log(`snapshots and per-session.json in ${dir}`);
    return 0;
  } finally {
    await rig.release();
    if (!values.keep) for (const f of readdirSync(dir)) if (f.endsWith('.heapsnapshot')) rmSync(join(dir, f));
  }
};

main().then((code) => process.exit(code), (err: unknown) => {
  console.error(err instanceof Error ? err.stack : String(err));
  process.exit(1);
});
