import t from 'tap';
import http from 'node:http';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import {
  allowedMethods,
  applyCors,
  CORS_ALLOW_HEADERS,
  CORS_ALLOW_METHODS,
  DEFAULT_CORS,
  handlePreflight,
  isOriginAllowed,
  PREFLIGHT_MAX_AGE_SECONDS,
  type CorsOption,
} from '../lib/http/cors.js';
import { readJsonBody } from '../lib/http/body.js';
import { sendError, sendJson } from '../lib/http/respond.js';
import { head, RawConnection, startServer, type Teardown } from './fixtures/wire-http.js';

const APP = 'https://app.example.com';
const EVIL = 'https://evil.example.com';

void t.test('defaults and constants', (t) => {
  t.equal(DEFAULT_CORS, false);
  t.equal(PREFLIGHT_MAX_AGE_SECONDS, 600);
  t.equal(CORS_ALLOW_METHODS, 'POST, OPTIONS');
  t.equal(CORS_ALLOW_HEADERS, 'Content-Type');
  t.equal(allowedMethods(false), 'POST');
  t.equal(allowedMethods([APP]), 'POST, OPTIONS');
  t.equal(allowedMethods(() => false), 'POST, OPTIONS');
  t.end();
});

void t.test('isOriginAllowed', (t) => {
  const cases: { cors: CorsOption; origin: string | undefined; allowed: boolean; name: string }[] = [
    { name: 'off', cors: false, origin: APP, allowed: false },
    { name: 'listed', cors: [APP], origin: APP, allowed: true },
    { name: 'not listed', cors: [APP], origin: EVIL, allowed: false },
    { name: 'exact match only (trailing slash)', cors: [APP], origin: `${APP}/`, allowed: false },
    { name: 'exact match only (port)', cors: [APP], origin: `${APP}:8443`, allowed: false },
    { name: 'exact match only (suffix)', cors: [APP], origin: `${APP}.evil.com`, allowed: false },
    { name: 'no Origin', cors: [APP], origin: undefined, allowed: false },
    { name: 'empty Origin', cors: [APP], origin: '', allowed: false },
    { name: 'empty list', cors: [], origin: APP, allowed: false },
    { name: 'predicate yes', cors: (o) => o.endsWith('.example.com'), origin: APP, allowed: true },
    { name: 'predicate no', cors: (o) => o === APP, origin: EVIL, allowed: false },
    { name: 'predicate not called without Origin', cors: () => true, origin: undefined, allowed: false },
  ];
  for (const c of cases) t.equal(isOriginAllowed(c.origin, c.cors), c.allowed, c.name);
  t.end();
});

/** A comet-like endpoint: preflight, CORS headers, then a JSON echo of the body. */
async function corsServer(t: Teardown, cors: CorsOption, vary?: string) {
  const posts: string[] = [];
  const applied: boolean[] = [];
  const ts = await startServer(t, async (req, res) => {
    if (handlePreflight(req, res, cors)) return;
    if (vary !== undefined) res.setHeader('Vary', vary);
    applied.push(applyCors(req, res, cors));
    if (req.method !== 'POST') return void sendError(res, 'method_not_allowed', 'use POST', { Allow: allowedMethods(cors) });
    posts.push(req.headers.origin ?? '(none)');
    const body = await readJsonBody(req, { maxBytes: 1024 });
    if (!body.ok) return void sendError(res, body.code, body.message);
    sendJson(res, 200, { echo: body.value });
  });
  return { ...ts, posts, applied };
}

async function call(port: number, method: string, headers: Record<string, string>) {
  const init: RequestInit = { method, headers: { ...headers } };
  if (method === 'POST') {
    init.body = '{"x":1}';
    (init.headers as Record<string, string>)['content-type'] = 'application/json';
  }
  const res = await fetch(`http://127.0.0.1:${port}/comet`, init);
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>) };
}

void t.test('applyCors on actual requests', async (t) => {
  const cases: { name: string; cors: CorsOption; origin?: string; acao: string | null; vary: string | null; applied: boolean; existingVary?: string }[] = [
    { name: 'CORS off: nothing', cors: false, origin: APP, acao: null, vary: null, applied: false },
    { name: 'allowed origin echoed', cors: [APP], origin: APP, acao: APP, vary: 'Origin', applied: true },
    { name: 'disallowed: Vary only', cors: [APP], origin: EVIL, acao: null, vary: 'Origin', applied: false },
    { name: 'no Origin: Vary only', cors: [APP], acao: null, vary: 'Origin', applied: false },
    { name: 'predicate', cors: (o) => o === APP, origin: APP, acao: APP, vary: 'Origin', applied: true },
    { name: 'Vary appended', cors: [APP], origin: APP, acao: APP, vary: 'Accept-Encoding, Origin', applied: true, existingVary: 'Accept-Encoding' },
    { name: 'Vary not duplicated', cors: [APP], origin: APP, acao: APP, vary: 'origin', applied: true, existingVary: 'origin' },
    { name: 'Vary * kept', cors: [APP], origin: APP, acao: APP, vary: '*', applied: true, existingVary: '*' },
  ];
  for (const c of cases) {
    const { port, applied } = await corsServer(t, c.cors, c.existingVary);
    const r = await call(port, 'POST', c.origin === undefined ? {} : { origin: c.origin });
    t.equal(r.status, 200, `${c.name}: request served`);
    t.strictSame(r.json, { echo: { x: 1 } }, `${c.name}: body`);
    t.equal(r.headers.get('access-control-allow-origin'), c.acao, `${c.name}: ACAO`);
    t.equal(r.headers.get('vary'), c.vary, `${c.name}: Vary`);
    t.equal(r.headers.get('access-control-allow-credentials'), null, `${c.name}: never credentials`);
    t.strictSame(applied, [c.applied], `${c.name}: return value`);
  }
});

void t.test('applyCors after the headers went out does nothing', async (t) => {
  const results: boolean[] = [];
  const { port } = await startServer(t, (req, res) => {
    res.writeHead(200);
    results.push(applyCors(req, res, [APP]));
    res.end();
  });
  await fetch(`http://127.0.0.1:${port}/`, { headers: { origin: APP } });
  t.strictSame(results, [false]);
});

void t.test('preflights', async (t) => {
  const preflight = { 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' };
  const cases: { name: string; cors: CorsOption; origin?: string; status: number; allow?: string; message?: RegExp }[] = [
    { name: 'allowed origin', cors: [APP], origin: APP, status: 204 },
    { name: 'allowed by predicate', cors: () => true, origin: APP, status: 204 },
    { name: 'CORS off', cors: false, origin: APP, status: 405, allow: 'POST', message: /CORS is not enabled/ },
    { name: 'origin not allowed', cors: [APP], origin: EVIL, status: 405, allow: 'POST, OPTIONS', message: /origin is not allowed/ },
    { name: 'no Origin', cors: [APP], status: 405, allow: 'POST, OPTIONS', message: /Origin header/ },
  ];
  for (const c of cases) {
    const { port, posts } = await corsServer(t, c.cors);
    const r = await call(port, 'OPTIONS', c.origin === undefined ? preflight : { ...preflight, origin: c.origin });
    t.equal(r.status, c.status, `${c.name}: status`);
    if (c.status === 204) {
      t.equal(r.headers.get('access-control-allow-origin'), c.origin ?? null, `${c.name}: ACAO`);
      t.equal(r.headers.get('access-control-allow-methods'), 'POST, OPTIONS', `${c.name}: methods`);
      t.equal(r.headers.get('access-control-allow-headers'), 'Content-Type', `${c.name}: headers`);
      t.equal(r.headers.get('access-control-max-age'), '600', `${c.name}: max age`);
      t.equal(r.headers.get('vary'), 'Origin', `${c.name}: Vary`);
      t.equal(r.json, undefined, `${c.name}: no body`);
    } else {
      const names: string[] = [];
      r.headers.forEach((_value, name) => names.push(name));
      t.strictSame(names.filter((n) => n.startsWith('access-control-')), [], `${c.name}: no Access-Control-* header`);
      t.equal(r.headers.get('allow'), c.allow ?? null, `${c.name}: Allow`);
      t.equal(r.json?.error, 'method_not_allowed', `${c.name}: code`);
      t.match(r.json?.message, c.message ?? /./, `${c.name}: message`);
      t.equal(r.headers.get('content-type'), 'application/json; charset=utf-8', `${c.name}: JSON`);
    }
    t.strictSame(posts, [], `${c.name}: the preflight never reaches the POST path`);
  }
});

void t.test('handlePreflight leaves other methods alone', async (t) => {
  const handled: boolean[] = [];
  const { port } = await startServer(t, (req, res) => {
    handled.push(handlePreflight(req, res, [APP]));
    res.end('untouched');
  });
  for (const method of ['POST', 'GET', 'PUT']) {
    const res = await fetch(`http://127.0.0.1:${port}/`, { method, headers: { origin: APP } });
    t.equal(await res.text(), 'untouched', method);
    t.equal(res.headers.get('access-control-allow-origin'), null, method);
  }
  t.strictSame(handled, [false, false, false]);
});

void t.test('handlePreflight on an answered response does not throw', async (t) => {
  const handled: boolean[] = [];
  const { port } = await startServer(t, (req, res) => {
    res.end('first');
    handled.push(handlePreflight(req, res, [APP]), handlePreflight(req, res, false));
  });
  const conn = await RawConnection.open(t, port);
  await conn.write(head({ Origin: APP }, '/comet', 'OPTIONS'));
  t.equal((await conn.readResponse()).status, 200);
  t.strictSame(handled, [true, true]);
});

const CHROMIUM = '/usr/bin/chromium';

void t.test('a real browser: allowed origin can call, a disallowed one is denied before its POST', { skip: !existsSync(CHROMIUM) && `no ${CHROMIUM}` }, async (t) => {
  const page = (label: string) => async (port: number) => {
    const s = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(`<title>${label}</title>`));
    t.teardown(() => new Promise<void>((r) => { s.closeAllConnections(); s.close(() => r()); }));
    await new Promise<void>((r) => s.listen(port, '127.0.0.1', r));
    return s;
  };
  const allowedPage = await page('allowed')(0);
  const deniedPage = await page('denied')(0);
  const origin = (s: http.Server) => `http://127.0.0.1:${(s.address() as { port: number }).port}`;
  const comet = await corsServer(t, [origin(allowedPage)]);

  const browser = await chromium.launch({ executablePath: CHROMIUM });
  t.teardown(() => browser.close());
  const tab = await browser.newPage();
  const attempt = async (from: http.Server) => {
    await tab.goto(`${origin(from)}/`);
    return tab.evaluate(async (url) => {
      try {
        const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"hi":1}' });
        return { ok: true, status: res.status, body: await res.text() };
      } catch (err) {
        return { ok: false, error: String(err) };
      }
    }, `http://127.0.0.1:${comet.port}/comet`);
  };

  const allowed = await attempt(allowedPage);
  t.match(allowed, { ok: true, status: 200 });
  t.strictSame(JSON.parse((allowed as { body: string }).body), { echo: { hi: 1 } });
  t.strictSame(comet.posts, [origin(allowedPage)], 'the allowed POST reached the handler');

  const denied = await attempt(deniedPage);
  t.match(denied, { ok: false, error: /TypeError/ }, 'fetch fails in the browser');
  t.strictSame(comet.posts, [origin(allowedPage)], 'the denied POST was never sent (preflight refused)');
});
