// The embedding examples: node:http, Express (`app.use(comet.handler)`, before or after
// express.json()) and Fastify (the onRequest + hijack pattern). Each is started on port 0 and
// does a setup + echo round trip, both as a runnable file (a child process) and in-process.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import type { Test } from 'tap';
import { build } from 'esbuild';
import express from 'express';
import {
  createCometServer, DEFAULT_INACTIVITY_MS, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_QUEUE, DEFAULT_MAX_SESSIONS, DEFAULT_PATH, DEFAULT_WAIT_MS,
} from '../lib/index.js';
import { startExpressExample } from '../examples/express.js';
import { startFastifyExample } from '../examples/fastify.js';
import { startNodeHttpExample, type RunningExample } from '../examples/node-http.js';
import { WireClient, fields, post, startHttp } from './fixtures/http.js';

const EXAMPLES = {
  'node-http': startNodeHttpExample,
  express: startExpressExample,
  fastify: startFastifyExample,
} as const;

/** Setup, send two messages, get them back as packets; then terminate. */
async function echoRoundTrip(t: Test, url: string): Promise<void> {
  const c = await WireClient.open(url);
  const r = await c.request({ messages: ['hello', { n: 2 }] });
  t.equal(r.status, 200, 'request answered');
  for (let i = 0; i < 5 && c.data.length < 2; i++) await c.request();
  t.same(c.data, ['hello', { n: 2 }], 'echoed back, in order');
  t.equal((await c.terminate()).status, 200, 'terminate');
  t.match(await c.request(), { status: 404, body: { error: 'unknown_session' } }, 'gone after terminate');
}

/** Errors still come from comet, as JSON, when it is mounted in a framework. */
async function cometErrors(t: Test, base: string): Promise<void> {
  t.match(await post(`${base}/comet`, 'nope', { raw: true }), { status: 400, body: { error: 'bad_json' } });
  t.match(await post(`${base}/comet`, [1]), { status: 400, body: { error: 'bad_request' } });
  const get = await post(`${base}/comet`, null, { method: 'GET' });
  t.match(get, { status: 405, body: { error: 'method_not_allowed' } });
  t.equal(get.headers.get('allow'), 'POST');
  t.match(await post(`${base}/comet`, '{}', { raw: true, contentType: 'text/plain' }), { status: 415, body: { error: 'unsupported_media_type' } });
  t.match(await post(`${base}/comet`, { type: 'setup', pad: 'x'.repeat(DEFAULT_MAX_BODY_BYTES) }), { status: 413, body: { error: 'too_large' } });
}

for (const [name, start] of Object.entries(EXAMPLES)) {
  void t.test(`${name} example, in process`, async (t) => {
    const app: RunningExample = await start({ options: { wait: 300, inactivity: 5000 } });
    t.teardown(() => app.close());
    const base = `http://127.0.0.1:${app.port}`;
    await echoRoundTrip(t, `${base}/comet`);
    await cometErrors(t, base);
    const home = await post(`${base}/`, null, { method: 'GET' });
    t.equal(home.status, 200, 'other paths reach the application');
    t.match(home.text, /comet-fsm echo/);
    t.equal((await post(`${base}/comet?v=1`, { type: 'setup' })).status, 200, 'a query string still reaches comet');
    await opsEndpoints(t, base);
  });
}

/** The README says every server answers /metrics and /healthz: so must each example. */
async function opsEndpoints(t: Test, base: string): Promise<void> {
  const metrics = await post(`${base}/metrics`, null, { method: 'GET' });
  t.equal(metrics.status, 200, 'GET /metrics');
  t.match(metrics.headers.get('content-type'), /^text\/plain/, 'Prometheus text');
  t.match(metrics.text, /^comet_sessions /m, 'with the live sessions gauge');
  const health = await post(`${base}/healthz`, null, { method: 'GET' });
  t.match(health, { status: 200, body: { status: 'ok' } }, 'GET /healthz');
}

void t.test('Express: app.use(\'/comet\', comet.handler), mounted on its path', async (t) => {
  const comet = await createCometServer({
    wait: 300,
    onMessage(_sid, data, session) {
      session.push(data);
    },
  });
  t.teardown(() => comet.close());
  const app = express();
  app.use('/comet', comet.handler);
  app.get('/healthz', comet.handler);
  app.get('/', (_req, res) => res.send('home'));
  const { url } = await startHttp(t, app);
  const base = url.replace(/\/comet$/, '');
  await echoRoundTrip(t, `${base}/comet`);
  t.equal((await post(`${base}/comet?v=1`, { type: 'setup' })).status, 200, 'with a query string');
  t.equal((await post(`${base}/comet/more`, { type: 'setup' })).status, 404, 'a path below it is not comet\'s');
  t.equal((await post(`${base}/`, null, { method: 'GET' })).text, 'home', 'other paths reach the application');
  t.match(await post(`${base}/healthz`, null, { method: 'GET' }), { status: 200, body: { status: 'ok' } }, 'app.get(\'/healthz\', comet.handler)');
  t.equal((await post(`${base}/metrics`, null, { method: 'GET' })).status, 404, '/metrics not mounted: Express\'s 404');
});

void t.test('CometServer exposes the options in effect', async (t) => {
  const defaults = await createCometServer();
  t.teardown(() => defaults.close());
  t.match(defaults, {
    path: DEFAULT_PATH, metricsPath: '/metrics', healthPath: '/healthz', wait: DEFAULT_WAIT_MS,
    inactivity: DEFAULT_INACTIVITY_MS, maxBodyBytes: DEFAULT_MAX_BODY_BYTES, maxSessions: DEFAULT_MAX_SESSIONS,
    maxQueue: DEFAULT_MAX_QUEUE,
  }, 'defaults applied');
  const custom = await createCometServer({ path: '/c', wait: 300, maxQueue: 7, metrics: false, healthPath: false });
  t.teardown(() => custom.close());
  t.match(custom, { path: '/c', wait: 300, maxQueue: 7, metricsPath: false, healthPath: false }, 'as given; no metrics: no metrics path');
});

void t.test('Express: other paths fall through to next()', async (t) => {
  const app = await startExpressExample({ options: { wait: 300 } });
  t.teardown(() => app.close());
  const r = await post(`http://127.0.0.1:${app.port}/api/ping`, { x: 1 });
  t.same(fields(r), { pong: { x: 1 } }, 'a route after comet, with express.json(), still works');
  t.equal((await post(`http://127.0.0.1:${app.port}/nowhere`, null, { method: 'GET' })).status, 404, "Express's own 404");
});

void t.test('Express: comet.handler after express.json() takes the parsed body', async (t) => {
  const comet = await createCometServer({
    wait: 300,
    onMessage(sid, data) {
      comet.handlePacket(sid, data).catch(() => {});
    },
  });
  t.teardown(() => comet.close());
  const app = express();
  app.use(express.json({ limit: DEFAULT_MAX_BODY_BYTES }));
  app.use(comet.handler);
  const { url } = await startHttp(t, app);
  await echoRoundTrip(t, url);
  t.match(await post(url, [1]), { status: 400, body: { error: 'bad_request' } }, 'the parsed body is still checked');
  t.match(await post(url, '', { raw: true }), { status: 400, body: { error: 'bad_request' } }, 'an empty body is {} to express.json()');
  t.match(await post(url, 'nope', { raw: true }), { status: 400 }, "bad JSON is express.json()'s 400");
});

void t.test('Fastify: other paths are left to Fastify', async (t) => {
  const app = await startFastifyExample({ options: { wait: 300 } });
  t.teardown(() => app.close());
  const r = await post(`http://127.0.0.1:${app.port}/nowhere`, null, { method: 'GET' });
  t.equal(r.status, 404);
  t.match(r.body, { statusCode: 404 }, "Fastify's own 404");
});

/**
 * Start an example file as its own process (PORT=0) and wait for its "listening" line. The file
 * is bundled by esbuild first (seconds faster than a TypeScript loader in the child; the same
 * thing `npm run build` does to it), into a tap test dir inside the project so that its
 * packages resolve from node_modules.
 */
async function spawnExample(t: Test, name: string, dir: string): Promise<{ port: number; stop: () => Promise<number | null> }> {
  const outfile = join(dir, `${name}.mjs`);
  await build({
    entryPoints: [fileURLToPath(new URL(`../examples/${name}.ts`, import.meta.url))],
    bundle: true, platform: 'node', format: 'esm', packages: 'external', outfile, logLevel: 'error',
  });
  const child = spawn(process.execPath, [outfile], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: no "listening" line`)), 15_000);
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      if (!line.includes('"listening"')) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { port: number }).port);
    });
    void exited.then((code) => reject(new Error(`${name} exited (${code}) before listening`)));
  });
  return {
    port,
    stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

void t.test('each example runs as a file on PORT=0: setup + echo round trip, exit 0 on SIGTERM', async (t) => {
  const dir = t.testdir({});
  for (const name of Object.keys(EXAMPLES)) {
    await t.test(name, async (t) => {
      const running = await spawnExample(t, name, dir);
      await echoRoundTrip(t, `http://127.0.0.1:${running.port}/comet`);
      await opsEndpoints(t, `http://127.0.0.1:${running.port}`);
      t.equal(await running.stop(), 0, 'exits 0 on SIGTERM');
    });
  }
});
