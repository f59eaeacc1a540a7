// The chat demo's server: its static routes, the relay of chat lines to every session, and the
// runnable `bin/demo.ts` (flags, the ready line, graceful exit on SIGTERM).
import t, { type Test } from 'tap';
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { CometClient } from '../lib/client/index.js';
import { projectRoot, startChatServer } from '../examples/chat/server.js';
import { isChatEvent, type ChatEvent } from '../examples/chat/protocol.js';
import { CHAT_HISTORY_MAX_BYTES, CHAT_HISTORY_MAX_LINES, ChatRoom } from '../examples/chat/room.js';
import { until } from './fixtures/fake-comet.js';
import { buildClientBundle } from './fixtures/client_bundle.js';

const root = projectRoot();
const pageDir = join(root, 'examples', 'chat');

void t.test('serves the page, its script and the client bundle; nothing else from disk', async (t) => {
  const bundleDir = await buildClientBundle(t, root);
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

/** A chat member: a client that keeps every chat event it gets. */
async function member(t: Test, url: string): Promise<{ client: CometClient; got: ChatEvent[] }> {
  const client = new CometClient(new URL('comet', url).href);
  const got: ChatEvent[] = [];
  client.on('message', ({ data }) => {
    if (isChatEvent(data)) got.push(data);
  });
  t.teardown(() => client.close());
  await client.connect();
  return { client, got };
}

const lines = (got: readonly ChatEvent[]) => got.filter((e) => e.type === 'line');
const refusals = (got: readonly ChatEvent[]) => got.flatMap((e) => (e.type === 'refused' ? [e.reason] : []));
const lastPresence = (got: readonly ChatEvent[]) => got.filter((e) => e.type === 'presence').at(-1);

void t.test('every line said goes to every session; anything else is refused back to its sender', async (t) => {
  const chat = await startChatServer({ assets: { pageDir, bundleDir: t.testdir() } });
  t.teardown(() => chat.close());
  const [a, b, c] = await Promise.all([member(t, chat.url), member(t, chat.url), member(t, chat.url)]);
  await a.client.send('not a chat request');
  await a.client.send({ type: 'say', nick: 'x'.repeat(33), text: 'nickname too long' });
  await a.client.send({ nick: 'ann', text: 'no type' });
  await a.client.send({ type: 'say', nick: 'ann', text: 'hi all', id: 'a-1', extra: 'dropped' });
  await b.client.send({ type: 'say', nick: 'bob', text: '<b>hi</b>' });
  await until(() => [a, b, c].every((m) => lines(m.got).length === 2), 3000, 'both lines everywhere');
  for (const m of [a, b, c]) {
    t.same(lines(m.got), [
      { type: 'line', nick: 'ann', text: 'hi all', id: 'a-1' },
      { type: 'line', nick: 'bob', text: '<b>hi</b>' },
    ]);
  }
  t.same(refusals(a.got), [
    'not a chat request: send {"type":"say","nick":…,"text":…}',
    '"nick" must be 1 to 32 characters',
    'not a chat request: "type" must be "join" or "say"',
  ], 'each refusal is told to its sender, in order');
  t.same(refusals(b.got), [], 'and to nobody else');
});

void t.test('presence: who is in the room, told to everyone when it changes', async (t) => {
  const chat = await startChatServer({ assets: { pageDir, bundleDir: t.testdir() } });
  t.teardown(() => chat.close());
  const a = await member(t, chat.url);
  const b = await member(t, chat.url);
  await a.client.send({ type: 'join', nick: 'ann' });
  await until(() => lastPresence(a.got) !== undefined, 3000, 'ann in the room');
  t.same(lastPresence(a.got), { type: 'presence', nicks: ['ann'] });
  await b.client.send({ type: 'say', nick: 'bob', text: 'saying joins too' });
  await until(() => [a, b].every((m) => lastPresence(m.got)?.nicks.length === 2), 3000, 'bob in the room, told to both');
  t.same(lastPresence(b.got), { type: 'presence', nicks: ['ann', 'bob'] });
  await b.client.send({ type: 'join', nick: 'bobby' });
  await until(() => lastPresence(a.got)?.nicks.includes('bobby') === true, 3000, 'the new nickname');
  t.same(lastPresence(a.got), { type: 'presence', nicks: ['ann', 'bobby'] });
  await b.client.close();
  await until(() => lastPresence(a.got)?.nicks.length === 1, 3000, 'bobby gone');
  t.same(lastPresence(a.got), { type: 'presence', nicks: ['ann'] }, 'a session that ends leaves the room');
});

void t.test('history: a newcomer gets the last lines, bounded in count and bytes', async (t) => {
  t.equal(CHAT_HISTORY_MAX_LINES, 50);
  t.equal(CHAT_HISTORY_MAX_BYTES, 32 * 1024);
  const room = new ChatRoom({ maxLines: 3, maxBytes: 200 });
  const chat = await startChatServer({ assets: { pageDir, bundleDir: t.testdir() }, room });
  t.teardown(() => chat.close());
  const early = await member(t, chat.url);
  await early.client.send({ type: 'join', nick: 'early' });
  await until(() => early.got.some((e) => e.type === 'history'), 3000, 'the first history');
  t.same(early.got.find((e) => e.type === 'history'), { type: 'history', lines: [] }, 'an empty room has no history');
  for (const text of ['one', 'two', 'three', 'four']) await early.client.send({ type: 'say', nick: 'early', text, id: text });
  await until(() => lines(early.got).length === 4, 3000, 'four lines');

  const late = await member(t, chat.url);
  await late.client.send({ type: 'join', nick: 'late' });
  await until(() => late.got.some((e) => e.type === 'history'), 3000, 'the history');
  t.same(late.got.find((e) => e.type === 'history'), {
    type: 'history',
    lines: ['two', 'three', 'four'].map((text) => ({ nick: 'early', text })),
  }, 'the last maxLines lines, oldest first, without the senders\' ids');
  await late.client.send({ type: 'join', nick: 'later' });
  await late.client.send({ type: 'say', nick: 'later', text: 'x'.repeat(150) });
  await until(() => lines(late.got).length === 1, 3000, 'the long line');
  t.equal(late.got.filter((e) => e.type === 'history').length, 1, 'a change of nickname does not resend the history');

  const last = await member(t, chat.url);
  await last.client.send({ type: 'join', nick: 'last' });
  await until(() => last.got.some((e) => e.type === 'history'), 3000, 'the history');
  t.same(last.got.find((e) => e.type === 'history'), {
    type: 'history',
    lines: [{ nick: 'later', text: 'x'.repeat(150) }],
  }, 'older lines dropped to stay within maxBytes');
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
  await c.send({ type: 'say', nick: 'cli', text: 'through the demo' });
  await until(() => got.some((d) => isChatEvent(d) && d.type === 'line'), 3000, 'the relayed line');
  t.same(got.filter((d) => isChatEvent(d) && d.type === 'line'), [{ type: 'line', nick: 'cli', text: 'through the demo' }]);
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'exits 0 after a graceful close');
  await c.close();
});
