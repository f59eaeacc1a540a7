// The browser bundle: esbuild builds it for the browser platform (a node: import would fail the
// build), and the built file works as a client on its own.
import t from 'tap';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type * as ClientModule from '../lib/client/index.js';
import { projectRoot } from '../examples/chat/server.js';
import { startComet } from './fixtures/comet-server.js';
import { until } from './fixtures/fake-comet.js';

const root = projectRoot();

void t.test('build-client.mjs makes self-contained ESM bundles that work', async (t) => {
  const outdir = t.testdir();
  const { stdout } = await promisify(execFile)(process.execPath, [join(root, 'scripts', 'build-client.mjs'), outdir], { cwd: root });
  t.match(stdout, /comet-client\.js/);
  const client = readFileSync(join(outdir, 'comet-client.js'), 'utf8');
  const min = readFileSync(join(outdir, 'comet-client.min.js'), 'utf8');
  const page = readFileSync(join(outdir, 'chat.js'), 'utf8');
  for (const [name, text] of [['comet-client.js', client], ['comet-client.min.js', min]] as const) {
    t.notMatch(text, /\bfrom\s*["']|\bimport\s*\(|\brequire\(/, `${name} imports nothing`);
    t.match(text, /export\s*\{/, `${name} is an ES module`);
  }
  t.ok(min.length < client.length, 'the minified file is smaller');
  t.match(page, /from "\.\/comet-client\.js"/, 'the page script loads the served client bundle');
  t.notMatch(page, /class CometClient/, 'and does not inline a second copy');

  const server = await startComet(t, {
    onMessage: (sid, data) => void server.comet.handlePacket(sid, data).catch(() => {}),
  });
  for (const file of ['comet-client.js', 'comet-client.min.js']) {
    const mod = (await import(pathToFileURL(join(outdir, file)).href)) as typeof ClientModule;
    const c = new mod.CometClient(server.url);
    const got: unknown[] = [];
    c.on('message', ({ data }) => got.push(data));
    await c.connect();
    await c.send({ via: file });
    await until(() => got.length === 1, 3000, `echo through ${file}`);
    t.same(got, [{ via: file }], `${file} connects, sends and receives`);
    await c.close();
    t.equal(c.state, 'closed');
  }
});
