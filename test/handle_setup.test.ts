// handleSetup alone, on a ManualClock: admission (session limit with setups in flight, closing)
// and the wait for a session-id server that is away, which sleeps on the injected clock.
import t, { type Test } from 'tap';
import { setImmediate as tick } from 'node:timers/promises';
import { ManualClock } from '../lib/otp/clock.js';
import { startSystem, stopSystem } from '../lib/otp/nact.js';
import { createCometApi, SETUP_RETRY_INTERVAL_MS, SETUP_RETRY_MS, type ApiReply, type CometApiDeps } from '../lib/comet/api.js';
import { localRouter } from '../lib/comet/session_router.js';
import { SessionTable } from '../lib/comet/sessions.js';

/** An API over an actor system where comet_sup never started: no session-id server, ever. */
function apiWithoutTree(t: Test, overrides: Partial<CometApiDeps> = {}): { api: ReturnType<typeof createCometApi>; clock: ManualClock; sessions: SessionTable } {
  const system = startSystem();
  t.teardown(() => stopSystem(system));
  const clock = new ManualClock();
  const sessions = new SessionTable();
  const api = createCometApi({
    system, router: localRouter(system), sessions, wait: 1000, inactivity: 1000, maxSessions: 10, clock,
    isClosing: () => false, ...overrides,
  });
  return { api, clock, sessions };
}

/** Record when a promise settles. */
function watch(p: Promise<ApiReply>): { reply: ApiReply | undefined } {
  const w: { reply: ApiReply | undefined } = { reply: undefined };
  void p.then((r) => { w.reply = r; });
  return w;
}

void t.test('the session-id server stays away: setup waits SETUP_RETRY_MS of the injected clock, then 503', async (t) => {
  const { api, clock, sessions } = apiWithoutTree(t);
  const setup = watch(api.handleSetup());
  let elapsed = 0;
  let sleepingOnTheClock = 0;
  // One retry interval at a time, letting the setup run between steps, as real time would.
  while (elapsed < SETUP_RETRY_MS && setup.reply === undefined) {
    await tick();
    if (setup.reply !== undefined) break;
    if (clock.pendingCount === 1) sleepingOnTheClock++;
    clock.advance(SETUP_RETRY_INTERVAL_MS);
    elapsed += SETUP_RETRY_INTERVAL_MS;
  }
  t.equal(setup.reply, undefined, `still retrying after ${elapsed} ms of the clock`);
  t.equal(sleepingOnTheClock, SETUP_RETRY_MS / SETUP_RETRY_INTERVAL_MS, 'every retry slept on the injected clock');
  await tick();
  t.same(setup.reply, { status: 503, body: { error: 'overloaded', message: 'session ids unavailable, retry' } });
  t.equal(sessions.settingUp, 0, 'the setup no longer counts against the limit');
});

void t.test('setups in flight count against the session limit', async (t) => {
  const { api, clock } = apiWithoutTree(t, { maxSessions: 1 });
  const first = watch(api.handleSetup());
  await tick();
  t.same(await api.handleSetup(), { status: 503, body: { error: 'overloaded', message: 'session limit reached' } });
  clock.advance(SETUP_RETRY_MS);
  await tick();
  t.equal(first.reply?.status, 503);
});

void t.test('a closing server refuses setups', async (t) => {
  const { api } = apiWithoutTree(t, { isClosing: () => true });
  t.same(await api.handleSetup(), { status: 503, body: { error: 'shutting_down', message: 'the server is shutting down' } });
});
