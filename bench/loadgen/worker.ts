/**
 * A load worker process: holds up to ~9,000 client sessions from its own loopback source address
 * and runs what the orchestrator asks over IPC. It exits when the orchestrator goes away.
 */
import { performance } from 'node:perf_hooks';
import { EioSession } from './eio-client.js';
import { LogHistogram } from './histogram.js';
import type { FromWorker, ToWorker } from './messages.js';
import { monotonicUs } from './messages.js';
import type { LoadSession, SessionCounters, SessionOptions } from './session.js';
import { V1Session } from './v1-client.js';

const sessions: LoadSession[] = [];
const counters: SessionCounters = { requests: 0, errors: 0 };
const hist = new LogHistogram();
let init: Extract<ToWorker, { type: 'init' }> | null = null;
let deliveries = 0;
let fanout = false;
let alive = 0;
const got = new Map<number, number>();

// Echo state, one slot per session.
let echoRunning = false;
let echoMeasuring = false;
let echoCount = 0;
let echoMax = 0;
let echoSeq = 0;
const expected: string[] = [];
let sentAt = new Float64Array(0);

const post = (m: FromWorker): void => {
  process.send?.(m);
};

const onData = (i: number, data: string): void => {
  if (echoRunning && data === expected[i]) {
    if (echoMeasuring) {
      hist.add((performance.now() - (sentAt[i] ?? 0)) * 1000);
      echoCount++;
    }
    sendEcho(i);
    return;
  }
  if (!fanout || data.charCodeAt(0) !== 0x62 /* 'b' */) return;
  const colon = data.indexOf(':');
  const n = Number(data.slice(1, colon));
  hist.add(monotonicUs() - Number(data.slice(colon + 1)));
  deliveries++;
  const c = (got.get(n) ?? 0) + 1;
  if (c >= alive) {
    got.delete(n);
    post({ type: 'got', n });
  } else {
    got.set(n, c);
  }
};

const sendEcho = (i: number): void => {
  if (!echoRunning || (echoMeasuring && echoCount >= echoMax)) return;
  const m = `e${++echoSeq}`;
  expected[i] = m;
  sentAt[i] = performance.now();
  sessions[i]?.send(m);
};

const open = (count: number, concurrency: number): void => {
  if (init === null) throw new Error('open before init');
  const cfg = init;
  const t0 = performance.now();
  let started = 0;
  let done = 0;
  let ok = 0;
  let firstError = '';
  const next = (): void => {
    if (started >= count) return;
    const i = sessions.length;
    started++;
    const options: SessionOptions = {
      target: { host: cfg.host, port: cfg.port, localAddress: cfg.localAddress },
      path: cfg.path,
      counters,
      onData: (data) => onData(i, data),
    };
    const s = cfg.protocol === 'v1' ? new V1Session(options) : new EioSession(options);
    sessions.push(s);
    s.open((err) => {
      done++;
      if (err === null) ok++;
      else if (firstError === '') firstError = `${err.code}: ${err.message}`;
      alive = ok;
      if (done === count) {
        post({ type: 'opened', ok, failed: count - ok, ms: performance.now() - t0, firstError });
      } else {
        next();
      }
    });
  };
  if (count === 0) post({ type: 'opened', ok: 0, failed: 0, ms: 0, firstError });
  for (let k = 0; k < Math.min(concurrency, count); k++) next();
};

const echo = (m: Extract<ToWorker, { type: 'echo' }>): void => {
  const clients = Math.min(m.clients, sessions.length);
  sentAt = new Float64Array(sessions.length);
  echoRunning = true;
  echoMeasuring = false;
  echoCount = 0;
  echoMax = m.maxRoundTrips;
  for (let i = 0; i < clients; i++) sendEcho(i);
  setTimeout(() => {
    hist.reset();
    const requests0 = counters.requests;
    const errors0 = counters.errors;
    const t0 = performance.now();
    echoMeasuring = true;
    post({ type: 'measuring' });
    setTimeout(() => {
      echoRunning = false;
      post({
        type: 'echoed',
        roundTrips: echoCount,
        requests: counters.requests - requests0,
        errors: counters.errors - errors0,
        elapsedMs: performance.now() - t0,
        hist: hist.toPairs(),
      });
    }, m.durationMs);
  }, m.warmupMs);
};

const stop = (): void => {
  echoRunning = false;
  for (const s of sessions) s.close();
  process.exit(0);
};

process.on('message', (raw: unknown) => {
  const m = raw as ToWorker;
  switch (m.type) {
    case 'init':
      init = m;
      break;
    case 'open':
      open(m.count, m.concurrency);
      break;
    case 'fanout':
      fanout = true;
      break;
    case 'reset':
      hist.reset();
      deliveries = 0;
      counters.requests = 0;
      counters.errors = 0;
      post({ type: 'reset' });
      break;
    case 'echo':
      echo(m);
      break;
    case 'report':
      post({
        type: 'report',
        deliveries,
        requests: counters.requests,
        errors: counters.errors,
        alive: sessions.filter((s) => s.alive).length,
        hist: hist.toPairs(),
      });
      break;
    case 'stop':
      stop();
      break;
  }
});

// The orchestrator died or let go of us: nothing else would ever end this process.
process.on('disconnect', stop);
