// The runnable servers' command line (bin/server_config.ts, bin/run_server.ts): every option in
// --help, --cors / COMET_CORS, and one clear line with exit status 1 for a bad flag or a port
// already in use.
import t from 'tap';
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FLAGS, parseConfig, parseCors, UsageError, type ServerConfig } from '../bin/server_config.js';
import { projectRoot, startChatServer } from '../examples/chat/server.js';

const root = projectRoot();
const run = (argv: string[], env: NodeJS.ProcessEnv = {}): ServerConfig => {
  const parsed = parseConfig(argv, env, 8080);
  if (parsed.kind !== 'run') throw new Error('expected a configuration');
  return parsed.config;
};

void t.test('--help lists every option with its environment variable', async (t) => {
  const parsed = parseConfig(['--help'], {}, 8123);
  if (parsed.kind !== 'help') throw new Error('expected the usage');
  for (const [flag, { env }] of Object.entries(FLAGS)) {
    t.match(parsed.usage, new RegExp(`--${flag} .*${env}`), `--${flag} / ${env}`);
  }
  t.match(parsed.usage, /LOG_LEVEL/);
  t.match(parsed.usage, /default 8123/, 'the default port of this server');
});

void t.test('flags win over the environment', async (t) => {
  const config = run(['--port', '9000', '--wait', '500'], { PORT: '7000', COMET_WAIT_MS: '100', HOST: '0.0.0.0' });
  t.equal(config.port, 9000);
  t.equal(config.host, '0.0.0.0');
  t.equal(config.options.wait, 500);
  t.equal(run([], {}).port, 8080, 'the default port');
});

void t.test('a bad flag or value is a UsageError of one line that points at --help', async (t) => {
  const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
    [['--bogus'], {}, /^Unknown option '--bogus'; see --help$/],
    [['--port'], {}, /^Option '--port <value>' argument missing; see --help$/],
    [['extra'], {}, /^Unexpected argument 'extra'; see --help$/],
    [['--port', 'eighty'], {}, /^--port \(PORT\) must be an integer from 0 to 65535, got "eighty"; see --help$/],
    [[], { PORT: '70000' }, /^--port \(PORT\) must be an integer from 0 to 65535, got "70000"/],
    [[], { COMET_WAIT_MS: '0' }, /^--wait \(COMET_WAIT_MS\) must be an integer from 1/],
    [['--cors', 'https://app.example.com/'], {}, /^--cors \(COMET_CORS\): "https:\/\/app.example.com\/" is not an origin/],
    [[], { COMET_CORS: 'app.example.com' }, /^--cors \(COMET_CORS\): "app.example.com" is not an origin/],
  ];
  for (const [argv, env, message] of cases) {
    const err = t.throws(() => parseConfig(argv, env, 8080), UsageError, [...argv, JSON.stringify(env)].join(' '));
    t.match((err as Error).message, message);
    t.notMatch((err as Error).message, /\n/, 'one line');
  }
});

void t.test('--cors / COMET_CORS: exact origins, or * for any', async (t) => {
  t.equal(parseCors(undefined), undefined, 'off by default');
  t.equal(parseCors(''), undefined);
  t.same(parseCors('https://a.example, http://localhost:3000'), ['https://a.example', 'http://localhost:3000']);
  const any = parseCors('*');
  t.equal(typeof any, 'function');
  t.equal(typeof any === 'function' && any('https://anything.example'), true);
  t.same(run([], { COMET_CORS: 'https://a.example' }).options.cors, ['https://a.example']);
  t.same(run(['--cors', 'https://b.example'], { COMET_CORS: 'https://a.example' }).options.cors, ['https://b.example']);
  t.equal(run([]).options.cors, undefined);

  // What a browser on an allowed origin, and on another, gets from a server configured so.
  const chat = await startChatServer({ assets: { pageDir: t.testdir(), bundleDir: t.testdir() }, cors: run(['--cors', 'https://a.example']).options.cors ?? false });
  t.teardown(() => chat.close());
  const preflight = (origin: string) =>
    fetch(new URL('comet', chat.url), {
      method: 'OPTIONS',
      headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
    });
  const allowed = await preflight('https://a.example');
  t.equal(allowed.status, 204);
  t.equal(allowed.headers.get('access-control-allow-origin'), 'https://a.example');
  const other = await preflight('https://b.example');
  t.equal(other.status, 405);
  t.equal(other.headers.get('access-control-allow-origin'), null);
  await other.arrayBuffer();
});

/** Runs a server script as `npm start` would (the TypeScript source, with tap's loaders). */
async function runBin(script: string, argv: string[], env: NodeJS.ProcessEnv) {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [...process.execArgv, join(root, 'bin', script), ...argv], {
      cwd: root,
      env: { ...process.env, LOG_LEVEL: 'warn', ...env },
      timeout: 30_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

void t.test('bin/demo.ts and bin/echo.ts: a bad flag is one line on stderr and exit 1', async (t) => {
  for (const script of ['demo.ts', 'echo.ts']) {
    const { code, stdout, stderr } = await runBin(script, ['--prot', '8080'], {});
    t.equal(code, 1, `${script} exits 1`);
    t.equal(stderr, "Unknown option '--prot'; see --help\n", `${script}: one line`);
    t.equal(stdout, '');
  }
});

void t.test('bin/demo.ts: a port in use is one line on stderr and exit 1, no stack', async (t) => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())));
  const address = taken.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const { code, stdout, stderr } = await runBin('demo.ts', ['--port', String(port)], {});
  t.equal(code, 1);
  t.equal(
    stderr,
    `comet-fsm chat demo: cannot listen on 127.0.0.1:${port}: the port is already in use (another server running?); choose another with --port or PORT\n`,
  );
  t.notMatch(stdout, /listening/, 'no ready line');
});
