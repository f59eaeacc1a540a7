// The chat demo's server: its static routes, the relay of chat lines to every session, and the
// runnable `bin/demo.ts` (flags, the ready line, graceful exit on SIGTERM).
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { CometClient } from '../lib/client/index.js';
import { projectRoot, startChatServer } from '../examples/chat/server.js';
import { until } from './fixtures/fake-comet.js';

const root = projectRoot();
const pageDir = join(root, 'examples', 'chat');

void t.test('serves the page, its script and the client bundle; nothing else from disk', async (t) => {
  const bundleDir = t.testdir();
  await promisify(execFile)(process.execPath, [join(root, 'scripts', 'build-client.mjs'), bundleDir], { cwd: root });
  const chat = await startChatServer({ assets: { pageDir, bundleDir } });
  t.teardown(() => chat.close());

  const page = await fetch(chat.url);
  t.equal(page.status, 200);
  t.match(page.headers.get('content-type'), /text\/html/);
  t.match(page.headers.get('content-security-policy'), /default-src 'self'/);
  const html = await page.text();
  for (const id of ['nickname', 'message-input', 'messages', 'status']) t.match(html, `data-testid="${id}"`, `page has ${id}`);
  for (const path of ['chat.js', 'comet-client.js', 'comet-client.min.js']) {
    const res = await fetch(new URL(path, chat.url));
    t.equal(res.status, 200, path);
    t.match(res.headers.get('content-type'), /javascript/);
    await res.arrayBuffer();
  }
  const head = await fetch(chat.url, { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal((await fetch(new URL('favicon.ico', chat.url))).status, 204);
  for (const path of ['package.json', 'index.ts', '..%2Fpackage.json', 'examples/chat/index.html']) {
    const res = await fetch(new URL(path, chat.url));
    t.equal(res.status, 404, `${path} is not served`);
    await res.arrayBuffer();
  }
  const post = await fetch(chat.url, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
  t.equal(post.status, 404, 'only GET and HEAD reach the static routes');
  await post.arrayBuffer();
});

void t.test('a missing bundle is a 500 that says how to build it', async (t) => {
  const emptyDir = t.testdir();
  const chat = await startChatServer({ assets: { pageDir, bundleDir: emptyDir } });
  t.teardown(() => chat.close());
  const res = await fetch(new URL('chat.js', chat.url));
  t.equal(res.status, 500);
  t.match(await res.text(), /npm run build:client/);
});

void t.test('every chat line goes to every session; anything else is dropped', async (t) => {
  const chat = await startChatServer({ assets: { pageDir, bundleDir: t.testdir() } });
  t.teardown(() => chat.close());
  const endpoint = new URL('comet', chat.url).href;
  const clients = [new CometClient(endpoint), new CometClient(endpoint), new CometClient(endpoint)];
  const got = clients.map(() => [] as unknown[]);
  clients.forEach((c, i) => {
    c.on('message', ({ data }) => got[i]?.push(data));
    t.teardown(() => c.close());
  });
  await Promise.all(clients.map((c) => c.connect()));
  const [a, b] = clients;
  await a?.send('not a chat line');
  await a?.send({ nick: 'x'.repeat(33), text: 'nickname too long' });
  await a?.send({ nick: 'ann', text: 'hi all', extra: 'dropped' });
  await b?.send({ nick: 'bob', text: '<b>hi</b>' });
  await until(() => got.every((g) => g.length === 2), 3000, 'both lines everywhere');
  for (const g of got) {
    t.same(g, [
      { nick: 'ann', text: 'hi all' },
      { nick: 'bob', text: '<b>hi</b>' },
    ]);
  }
});

void t.test('bin/demo.ts: --help, the ready line with the URL, SIGTERM exits 0', async (t) => {
  const demo = join(root, 'bin', 'demo.ts');
  // The same loaders tap runs this file with, so the child runs the TypeScript source too.
  const node = [...process.execArgv, demo];
  const help = await promisify(execFile)(process.execPath, [...node, '--help'], { cwd: root });
  t.match(help.stdout, /--port N\s+PORT/);

  const child = spawn(process.execPath, node, {
    cwd: root,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      if (!line.includes('"listening"')) return;
      const parsed = JSON.parse(line) as { url?: string };
      if (parsed.url !== undefined) resolve(parsed.url);
    });
    void exited.then((code) => reject(new Error(`demo exited early with ${String(code)}`)));
  });
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const page = await fetch(url);
  t.equal(page.status, 200);
  t.match(await page.text(), /data-testid="messages"/);
  const c = new CometClient(new URL('comet', url).href);
  const got: unknown[] = [];
  c.on('message', ({ data }) => got.push(data));
  await c.connect();
  await c.send({ nick: 'cli', text: 'through the demo' });
  await until(() => got.length === 1, 3000, 'the relayed line');
  t.same(got, [{ nick: 'cli', text: 'through the demo' }]);
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'exits 0 after a graceful close');
  await c.close();
});
