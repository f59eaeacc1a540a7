// The layers of docs/architecture.md, checked on every file: imports point one way and no file
// imports itself back (scripts/check-imports.ts reads the imports with ts.preProcessFile).
import t from 'tap';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { importCycles, layerViolations, readImports } from '../scripts/check-imports.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const graph = readImports(root);

void t.test('the check reads the tree', async (t) => {
  t.ok(graph.has('lib/server.ts') && graph.has('lib/comet/api.ts') && graph.has('supervisors/supervisor.ts') && graph.has('bin/echo.ts'));
  t.ok(graph.get('lib/server.ts')?.includes('lib/comet/api.ts'), 'relative imports resolved to files');
});

void t.test('imports point one way: lib/otp <- supervisors <- lib/comet <- lib/cluster <- lib/http <- lib/observer <- lib/server.ts <- bin, examples; lib/client alone', async (t) => {
  t.same(layerViolations(graph), []);
});

void t.test('no import circle between files', async (t) => {
  t.same(importCycles(graph), []);
});

void t.test('the check is not blind: a back import and a circle are caught', async (t) => {
  const broken = new Map(graph);
  broken.set('lib/comet/wire.ts', [...(graph.get('lib/comet/wire.ts') ?? []), 'lib/http/respond.ts']);
  broken.set('lib/client/wire.ts', [...(graph.get('lib/client/wire.ts') ?? []), 'lib/comet/ids.ts']);
  broken.set('lib/comet/api.ts', [...(graph.get('lib/comet/api.ts') ?? []), 'lib/cluster/router.ts']);
  broken.set('lib/cluster/router.ts', [...(graph.get('lib/cluster/router.ts') ?? []), 'lib/server.ts']);
  broken.set('lib/http/respond.ts', [...(graph.get('lib/http/respond.ts') ?? []), 'lib/observer/index.ts']);
  broken.set('lib/observer/page/protocol.ts', ['lib/observer/history.ts']);
  broken.set('lib/observer/history.ts', [...(graph.get('lib/observer/history.ts') ?? []), 'lib/client/index.ts']);
  const violations = layerViolations(broken);
  t.ok(violations.includes('lib/http/respond.ts -> lib/observer/index.ts (lib/http must not import lib/observer)'), 'the observer sits above lib/http');
  t.ok(violations.includes('lib/observer/page/protocol.ts -> lib/observer/history.ts (lib/observer/page imports only itself and lib/client)'), 'the page stays browser code');
  t.ok(violations.includes('lib/observer/history.ts -> lib/client/index.ts (only bin, examples and the observer page use lib/client)'), 'the server side does not use the client');
  t.ok(violations.includes('lib/comet/wire.ts -> lib/http/respond.ts (lib/comet must not import lib/http)'), 'the back import');
  t.ok(violations.includes('lib/client/wire.ts -> lib/comet/ids.ts (lib/client imports only lib/client)'), 'the client reaching out');
  t.ok(violations.includes('lib/comet/api.ts -> lib/cluster/router.ts (lib/comet must not import lib/cluster)'), 'the application reaching up to the cluster');
  t.ok(violations.includes('lib/cluster/router.ts -> lib/server.ts (lib/cluster must not import lib/server.ts)'), 'the cluster reaching up to the server');
  const cycles = importCycles(broken);
  t.ok(cycles.some((c) => c.includes('lib/comet/wire.ts -> lib/http/respond.ts')), `the circle, with its path: ${cycles.join('; ')}`);
});
