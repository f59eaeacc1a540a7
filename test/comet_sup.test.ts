// comet_sup's wiring of each connection's start and end: a connection FSM killed (`exit(Pid, kill)`,
// no terminate) gives back everything its session held, once, as a terminate would have: its row
// in the session table, its sid in the session-id server, its client's slot, its bytes in the
// server's budget and its packets in the queued count; the application hears the end (`crash`).
import t, { type Test } from 'tap';
import { setImmediate as tick } from 'node:timers/promises';
import { startSystem, stopSystem, type ParentRef } from '../lib/otp/nact.js';
import { kill, shutdown, type Pid } from '../lib/otp/proc_lib.js';
import { whereis } from '../lib/otp/registry.js';
import { nullLogger } from '../lib/otp/logger.js';
import { createCometApi, type CometApi, type SocketWatch } from '../lib/comet/api.js';
import { ServerBudget } from '../lib/comet/budget.js';
import { ClientLimits } from '../lib/comet/client_limits.js';
import { sessionIdServer, startCometSup } from '../lib/comet/comet_sup.js';
import { connectionName, type SessionEndReason } from '../lib/comet/connection.js';
import type { Sid } from '../lib/comet/ids.js';
import * as sessionIds from '../lib/comet/session_ids.js';
import { localRouter } from '../lib/comet/session_router.js';
import { SessionTable } from '../lib/comet/sessions.js';
import { newConnectionStats, type ConnectionStats } from '../lib/comet/stats.js';
import { ManualClock } from '../lib/otp/clock.js';

const PEER = '192.0.2.7';
const SOCKET: SocketWatch = { onClosed: () => () => undefined, peer: PEER };
/** A packet of about 2,000 bytes: two do not fit in the server's budget of 3,000. */
const BIG = 'x'.repeat(2000);

interface Tree {
  system: ParentRef;
  api: CometApi;
  sessions: SessionTable;
  budget: ServerBudget;
  stats: ConnectionStats;
  ends: { sid: Sid; why: SessionEndReason }[];
}

/** comet_sup with one session per client and a server budget of 3,000 bytes. */
async function tree(t: Test): Promise<Tree> {
  const system = startSystem();
  t.teardown(() => stopSystem(system));
  // The FSMs' timers on a clock that never moves: nothing here waits on them.
  const clock = new ManualClock();
  const limits = new ClientLimits({ maxSessionsPerClient: 1, setupRatePerClient: 0, now: () => clock.now() });
  const sessions = new SessionTable((sid) => limits.ended(sid));
  const budget = new ServerBudget(3000);
  const stats = newConnectionStats();
  const ends: Tree['ends'] = [];
  const started = await startCometSup(system, {
    connection: {
      wait: 60_000, inactivity: 60_000, maxQueue: 100, serverBudget: budget, stats, logger: nullLogger,
      hooks: { onSessionEnd: (sid, why) => { ends.push({ sid, why }); } },
    },
    sessions, logger: nullLogger, clock, onExit: () => undefined,
  });
  if (!('ok' in started)) throw new Error('comet_sup did not start');
  const api = createCometApi({
    system, router: localRouter(system), sessions, wait: 60_000, inactivity: 60_000, maxSessions: 10,
    clock, isClosing: () => false, clientLimits: limits,
  });
  return { system, api, sessions, budget, stats, ends };
}

async function setup(api: CometApi): Promise<{ status: number; sid: Sid }> {
  const r = await api.handleSetup(PEER);
  return { status: r.status, sid: ('body' in r ? r.body as { sid: Sid } : { sid: '' as Sid }).sid };
}

async function reservedSids(system: ParentRef): Promise<number> {
  const ids = sessionIdServer(system);
  if (!ids) throw new Error('no session-id server');
  return sessionIds.count(ids, 1000);
}

async function settled(check: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await tick();
}

void t.test('kill_connection: a killed session is gone from the table, its sid, its client\'s slot and its bytes given back', async (t) => {
  const { system, api, sessions, budget, stats, ends } = await tree(t);
  const first = await setup(api);
  t.equal(first.status, 200);
  t.equal((await api.handleSetup(PEER)).status, 429, 'one session per client: a second setup is refused while the first lives');
  await api.handlePacket(first.sid, BIG);
  t.ok(budget.used > 2000, 'the unacked packet counts in the server budget');
  t.equal(stats.queued, 1);
  t.equal(await reservedSids(system), 1);

  const fsm = whereis(system, connectionName(first.sid)) as Pid<never>;
  kill(fsm);
  await settled(() => !sessions.has(first.sid));

  t.notOk(sessions.has(first.sid), 'out of the session table');
  t.equal(sessions.size, 0, 'no session counted');
  const req = await api.handleJson({ sid: first.sid, rid: 1 }, SOCKET);
  t.same(req.status, 404, 'its sid answers 404');
  t.match('body' in req ? req.body : req, { error: 'unknown_session' });
  t.equal(budget.used, 0, 'its bytes are back in the server budget');
  t.equal(stats.queued, 0, 'its packets no longer count as queued');
  t.equal(await reservedSids(system), 0, 'its sid is released in the session-id server');
  t.same(ends, [{ sid: first.sid, why: 'crash' }], 'the application hears it end, with reason crash');

  const second = await setup(api);
  t.equal(second.status, 200, 'the client\'s slot is free: a new setup from the same address is admitted');
  await t.resolves(api.handlePacket(second.sid, BIG), 'the new session can hold what the killed one held');
});

void t.test('shutdown_connection: terminate runs, and the exit that follows gives back nothing twice', async (t) => {
  const { system, api, sessions, budget, stats, ends } = await tree(t);
  const first = await setup(api);
  await api.handlePacket(first.sid, BIG);
  await shutdown(whereis(system, connectionName(first.sid)) as Pid<never>, 'shutdown', 1000);
  for (let i = 0; i < 10; i++) await tick(); // the DOWN after terminate, had it counted again
  t.notOk(sessions.has(first.sid));
  t.equal(budget.used, 0, 'the budget is back to 0, not below');
  t.equal(stats.queued, 0, 'the queued count is back to 0, not below');
  t.same(ends, [{ sid: first.sid, why: 'shutdown' }], 'one end, from terminate');
  const a = await setup(api);
  t.equal(a.status, 200);
  t.equal((await api.handleSetup(PEER)).status, 429, 'the client\'s count went down once only: its one slot is taken again');
});

void t.test('kill_connection_held_poll: the poll a killed session held is answered 404 at once', async (t) => {
  const { system, api, sessions } = await tree(t);
  const { sid } = await setup(api);
  const held = api.handleJson({ sid, rid: 1 }, SOCKET);
  await settled(() => (sessions.dataOf(sid)?.held ?? undefined) !== undefined);
  t.ok(sessions.dataOf(sid)?.held, 'the poll is held');
  kill(whereis(system, connectionName(sid)) as Pid<never>);
  const r = await held;
  t.equal(r.status, 404);
  t.match('body' in r ? r.body : r, { error: 'unknown_session' });
  t.notOk(sessions.has(sid));
});

void t.test('reply_written: a request\'s 200 counts in its session\'s budget from written() until released, once', async (t) => {
  const { api, sessions, budget } = await tree(t);
  const { sid } = await setup(api);
  await api.handlePacket(sid, 'hello');
  const reply = await api.handleJson({ sid, rid: 1 }, SOCKET);
  if (!('json' in reply)) throw new Error(`expected an encoded 200, got ${JSON.stringify(reply)}`);
  t.match(reply.json, /"data":"hello"/, 'the packet');
  const session = sessions.dataOf(sid);
  if (session === undefined) throw new Error('no session');
  const before = { used: budget.used, unflushed: session.budget.unflushed };
  t.equal(before.unflushed, 0, 'nothing unflushed before it is written');
  const release = reply.written();
  t.ok(session.budget.unflushed > reply.json.length, 'written: its bytes count in the session as unflushed');
  t.equal(budget.used - before.used, session.budget.unflushed, 'and in the server\'s budget');
  release();
  release();
  t.equal(session.budget.unflushed, 0, 'released once: given back');
  t.equal(budget.used, before.used, 'the server\'s budget too, once');
});
