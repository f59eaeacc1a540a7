// The command-line client (`comet-fsm client <url>`), run in-process with piped streams against
// a real server that echoes each message back to its session.
import t from 'tap';
import { PassThrough } from 'node:stream';
import { main } from '../bin/comet-fsm.js';
import { startComet } from './fixtures/comet-server.js';
import { until } from './fixtures/fake-comet.js';

function io() {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  return {
    stdin,
    stdout,
    stderr,
    out: () => out,
    err: () => err,
    lines: () => out.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as unknown),
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

void t.test('exits 1 when the connection is lost for good', async (t) => {
  const server = await startComet(t);
  const s = io();
  const done = main(['client', server.url, '--retries', '2'], s);
  await until(() => server.comet.heldCount() > 0, 3000, 'the poll to be held');
  await server.comet.close();
  t.equal(await done, 1);
  t.match(s.err(), /unreachable/);
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
