// The command-line client (`comet-fsm client <url>`), run in-process with piped streams against
// a real server that echoes each message back to its session.
import t, { type Test } from 'tap';
import { main } from '../bin/comet-fsm.js';
import { CometClient } from '../lib/client/index.js';
import { startChatServer } from '../examples/chat/server.js';
import { MAX_TEXT_LENGTH } from '../examples/chat/protocol.js';
import { startComet } from './fixtures/comet-server.js';
import { until } from './fixtures/fake-comet.js';
import { pipedIo } from './fixtures/cli_io.js';
import { sidTag } from '../lib/index.js';

function io() {
  const p = pipedIo();
  return {
    ...p,
    lines: () => p.out().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as unknown),
    clientOptions: { retryBaseMs: 5, retryCapMs: 20 },
  };
}

void t.test('--help prints the usage and exits 0', async (t) => {
  const s = io();
  t.equal(await main(['--help'], s), 0);
  t.match(s.out(), /Usage: comet-fsm client <url>/);
});

void t.test('bad usage exits 2 with the usage on stderr', async (t) => {
  for (const argv of [[], ['client'], ['server', 'http://x/'], ['client', 'ftp://x/'], ['client', 'http://x/', '--retries', 'many'], ['--bogus']]) {
    const s = io();
    t.equal(await main(argv, s), 2, argv.join(' ') || '(no arguments)');
    t.match(s.err(), /comet-fsm client|retries|Unknown option/);
  }
});

void t.test('prints each packet as a JSON line and sends each stdin line', async (t) => {
  const server = await startComet(t, {
    onMessage: (sid, data) => void server.comet.handlePacket(sid, data).catch(() => {}),
  });
  const s = io();
  const done = main(['client', server.url], s);
  s.stdin.write('{"hello":"world"}\n');
  s.stdin.write('just text\n');
  s.stdin.write('\n');
  s.stdin.write('42\n');
  await until(() => s.lines().length === 3, 5000, 'three echoes');
  s.stdin.end();
  t.equal(await done, 0, 'exits 0 when stdin ends');
  t.same(s.lines(), [
    { seq: 1, data: { hello: 'world' } },
    { seq: 2, data: 'just text' },
    { seq: 3, data: 42 },
  ]);
  t.same(
    server.seen.messages.map((m) => m.data),
    [{ hello: 'world' }, 'just text', 42],
    'blank lines are not sent',
  );
  t.match(s.err(), /# open /);
  const sid = server.seen.sessions[0] ?? 'none';
  t.ok(s.err().includes(`# open ${sidTag(sid)} `), 'the session named by its log tag');
  t.notOk(s.err().includes(sid), 'never by its sid, the session\'s credential');
  t.same(server.comet.sessions(), [], 'the session was terminated');
});

void t.test('--raw sends JSON-looking lines as strings; --quiet keeps stderr empty', async (t) => {
  const server = await startComet(t);
  const s = io();
  const done = main(['client', server.url, '--raw', '--quiet'], s);
  s.stdin.end('{"a":1}\n');
  t.equal(await done, 0);
  t.same(server.seen.messages.map((m) => m.data), ['{"a":1}']);
  t.equal(s.err(), '');
});

void t.test('exits 1 when the server cannot be reached', async (t) => {
  const gone = await startComet(t);
  await gone.comet.close();
  const s = io();
  t.equal(await main(['client', gone.url, '--retries', '1'], s), 1);
  t.match(s.err(), /cannot connect/);
});

void t.test('exits 1 when the connection is lost for good; --retries N is N retries after the first attempt', async (t) => {
  const server = await startComet(t);
  const s = io();
  const done = main(['client', server.url, '--retries', '2'], s);
  await until(() => server.comet.heldCount() > 0, 3000, 'the poll to be held');
  await server.comet.close();
  t.equal(await done, 1);
  t.match(s.err(), /unreachable/);
  t.match(s.err(), /gave up after 3 failed attempts \(2 retries after the first\)/);
  // A retry that reaches the server while it closes gets its 503 shutting_down: a failed attempt too.
  t.equal(s.err().match(/# error (network|timeout|bad_response|server|http_status)/g)?.length, 3, 'three failed attempts were reported');
});

/** A chat member on the command line, against the demo's chat server in this process. */
function chatCli(t: Test, url: string, nick: string, extra: string[] = []) {
  const s = io();
  const done = main(['client', new URL('comet', url).href, '--nick', nick, ...extra], s);
  t.teardown(async () => {
    s.stdin.end();
    await done;
  });
  return { ...s, done, outLines: () => s.out().split('\n').filter((l) => l !== '') };
}

void t.test('--nick joins the chat: says each stdin line, prints each chat line as "nick: text"', async (t) => {
  const chat = await startChatServer({ assets: { pageDir: t.testdir(), bundleDir: t.testdir() } });
  t.teardown(() => chat.close());
  const page = new CometClient(new URL('comet', chat.url).href);
  const seen: unknown[] = [];
  page.on('message', ({ data }) => seen.push(data));
  t.teardown(() => page.close());
  await page.connect();
  await page.send({ type: 'say', nick: 'ann', text: 'said before the CLI joined' });

  const cli = chatCli(t, chat.url, 'cli');
  await until(() => cli.outLines().length === 1, 5000, 'the history');
  t.same(cli.outLines(), ['ann: said before the CLI joined'], 'the recent lines first');
  await until(() => cli.err().includes('# in the room: ann, cli\n'), 5000, 'the CLI told who is in the room');
  await until(() => seen.some((d) => JSON.stringify(d) === '{"type":"presence","nicks":["ann","cli"]}'), 5000, 'the page told too');

  cli.stdin.write('hello from the terminal\n');
  await until(() => cli.outLines().length === 2, 5000, 'its own line back');
  t.same(seen.filter((d) => (d as { type?: string }).type === 'line').at(-1), { type: 'line', nick: 'cli', text: 'hello from the terminal' }, 'the page got it as a chat line');
  await page.send({ type: 'say', nick: 'ann', text: '{"looks":"like json"}' });
  await until(() => cli.outLines().length === 3, 5000, 'the page\'s line');
  t.same(cli.outLines(), ['ann: said before the CLI joined', 'cli: hello from the terminal', 'ann: {"looks":"like json"}']);
  cli.stdin.end();
  t.equal(await cli.done, 0);
  t.notMatch(cli.out(), /^#|seq/m, 'stdout has nothing but the chat lines');
});

void t.test('--nick: a line the chat refuses is reported on stderr, even with --quiet', async (t) => {
  const chat = await startChatServer({ assets: { pageDir: t.testdir(), bundleDir: t.testdir() } });
  t.teardown(() => chat.close());
  const cli = chatCli(t, chat.url, 'cli', ['--quiet']);
  cli.stdin.write(`${'x'.repeat(MAX_TEXT_LENGTH + 1)}\n`);
  cli.stdin.write('short enough\n');
  await until(() => cli.outLines().length === 1, 5000, 'the second line');
  t.same(cli.outLines(), ['cli: short enough']);
  t.equal(cli.err(), `refused by the chat: "text" must be 1 to ${MAX_TEXT_LENGTH} characters\n`);
});

void t.test('--nick must be a valid nickname and does not go with --raw', async (t) => {
  for (const argv of [['--nick', ''], ['--nick', 'x'.repeat(33)], ['--nick', 'ann', '--raw']]) {
    const s = io();
    t.equal(await main(['client', 'http://127.0.0.1:1/comet', ...argv], s), 2, argv.join(' '));
    t.match(s.err(), /--nick must be 1 to 32 characters/);
  }
});

void t.test('an interrupt closes the session and exits 0', async (t) => {
  const server = await startComet(t);
  let interrupt!: () => void;
  const s = { ...io(), interrupted: new Promise<void>((r) => (interrupt = r)) };
  const done = main(['client', server.url], s);
  await until(() => server.comet.heldCount() > 0, 3000, 'the poll to be held');
  interrupt();
  t.equal(await done, 0);
  t.same(server.seen.ends.map((e) => e.reason), ['terminate']);
});

void t.test('a URL without the endpoint path: cannot connect, and a hint names /comet', async (t) => {
  const server = await startComet(t);
  const s = io();
  t.equal(await main(['client', server.url.replace(/\/comet$/, '/'), '--retries', '0'], s), 1);
  t.match(s.err(), /cannot connect: .*not_found/);
  t.match(s.err(), /is the URL the comet endpoint\? .*\/comet/);
});
