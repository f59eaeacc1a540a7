// The session-id server crashing, through the supervision tree:
// - within the restart intensity, comet_sup restarts it; setups during each restart are answered
//   (200, or 503 the client retries), never left hanging, and no new sid is a live one;
// - past the intensity, the tree gives up: onFatal once with the reason, /healthz 503, the server
//   stops serving (held polls answered, sessions end 'shutdown'); the runnable server exits 1
//   with one clear log line.
import { randomUUID } from 'node:crypto';
import t from 'tap';
import type { ExitReason } from '../lib/otp/errors.js';
import type { CometServer, SessionEndReason, Sid } from '../lib/index.js';
import { MANY_CLIENTS_ON_LOOPBACK, WireClient, fields, post, setup, startServer, waitFor, type Reply } from './fixtures/http.js';
import { bundleBin, spawnServer } from './fixtures/soak_process.js';

/** How many times comet_sup has started the session-id server (its progress reports). */
function sessionIdStarts(logs: readonly { obj: object; msg: string | undefined }[]): number {
  return logs.filter((l) => l.msg === 'supervisor progress: started' && (l.obj as { started?: { id?: unknown } }).started?.id === 'session_ids').length;
}

void t.test('crashed three times while setups pour in: restarted each time, every setup answered, no live sid handed out again', async (t) => {
  const ref: { comet?: CometServer } = {};
  // After a crash, the generator offers every live sid before a fresh one: only the restarted
  // server's uniqueness check (its live set rebuilt from the connection supervisor) stops them.
  let replay: string[] = [];
  let offeredLive = 0;
  const generateSid = (): string => {
    const next = replay.shift();
    if (next !== undefined) {
      offeredLive++;
      return next;
    }
    return randomUUID();
  };
  const { url, seen, comet } = await startServer(t, { ...MANY_CLIENTS_ON_LOOPBACK, wait: 10_000, inactivity: 10_000, intensity: 10, period: 5, generateSid }, { echo: true });
  ref.comet = comet;
  const old = await Promise.all(Array.from({ length: 10 }, () => WireClient.open(url)));
  const oldPolls = old.map((c) => c.request());

  const granted: Sid[] = [];
  let answered = 0;
  for (let round = 1; round <= 3; round++) {
    replay = [...comet.sessions()];
    t.ok(comet.crashSessionIds(), `round ${round}: crash cast to a running session-id server`);
    // Fired in the same tick as the crash: they meet a dying, absent or restarting server.
    const during: Reply[] = await Promise.all(Array.from({ length: 20 }, () => post(url, { type: 'setup' })));
    for (const r of during) {
      answered++;
      t.ok(r.status === 200 || (r.status === 503 && fields(r)['error'] === 'overloaded'), `setup during restart: ${r.status} ${r.text}`);
      if (r.status === 200) granted.push(fields(r)['sid'] as Sid);
    }
    await waitFor(() => sessionIdStarts(seen.logs) === round + 1, `restart ${round}`);
    replay = [...comet.sessions()];
    granted.push(await setup(url));
  }
  t.equal(answered, 60, 'every setup during a restart was answered');
  t.ok(offeredLive > 0, `live sids were offered to restarted servers (${offeredLive} times)`);
  t.equal(new Set(granted).size, granted.length, 'no sid handed out twice');
  const oldSids = new Set<string>(old.map((c) => c.sid));
  t.same(granted.filter((s) => oldSids.has(s)), [], 'no new sid is one of the live old ones');
  t.equal(comet.sessions().length, old.length + granted.length, 'every session has its own FSM');
  t.equal(seen.logs.filter((l) => l.msg === 'gen_server crashed').length, 3, 'each crash logged');
  t.same(seen.ends, [], 'no session ended: the crashes stayed inside the session-id server');

  // The old sessions never noticed.
  for (const [i, c] of old.entries()) await comet.handlePacket(c.sid, `old ${i}`);
  for (const [i, p] of oldPolls.entries()) {
    t.equal((await p).status, 200);
    t.same(old[i]?.data, [`old ${i}`]);
  }
});

void t.test('past the restart intensity: onFatal once, /healthz 503, the server stops serving', async (t) => {
  const fatal: ExitReason[] = [];
  const ends: { sid: Sid; reason: SessionEndReason }[] = [];
  const { url, base, seen, comet } = await startServer(t, {
    wait: 30_000,
    intensity: 1,
    period: 5,
    onFatal: (reason) => fatal.push(reason),
    onSessionEnd: (sid, reason) => {
      ends.push({ sid, reason });
    },
  });
  t.equal((await fetch(`${base}/healthz`)).status, 200, 'healthy at first');
  const c = await WireClient.open(url);
  const held = c.request();
  await waitFor(() => comet.heldCount() === 1, 'the poll to be held');

  t.ok(comet.crashSessionIds(), 'first crash');
  await waitFor(() => sessionIdStarts(seen.logs) === 2, 'the restart');
  const second = await setup(url);
  t.pass('one crash within the intensity: still serving');
  t.same(fatal, []);

  t.ok(comet.crashSessionIds(), 'second crash within the period');
  await waitFor(() => fatal.length > 0, 'onFatal');
  t.same(fatal, ['shutdown'], 'onFatal called with the tree\'s exit reason');
  const lines = seen.logs.filter((l) => /restart intensity reached/.test(l.msg ?? ''));
  t.equal(lines.length, 1, 'one log line says why');
  t.equal(lines[0]?.level, 'error');

  const h = await fetch(`${base}/healthz`);
  t.equal(h.status, 503, '/healthz tells the load balancer');
  t.same(await h.json(), { status: 'unavailable' });
  const heldReply = await held;
  t.equal(heldReply.status, 200, 'the held poll was answered as the tree went down');
  t.same(ends.sort((a, b) => a.sid.localeCompare(b.sid)), [{ sid: c.sid, reason: 'shutdown' }, { sid: second, reason: 'shutdown' }].sort((a, b) => a.sid.localeCompare(b.sid)), 'every session ended with reason shutdown');
  const s = await post(url, { type: 'setup' });
  t.equal(s.status, 503, 'setups are refused');
  t.equal(fields(s)['error'], 'shutting_down');
  t.equal((await c.request()).status, 503, 'requests are refused');
  t.notOk(comet.crashSessionIds(), 'nothing left to crash');
  await new Promise((r) => setTimeout(r, 50));
  t.equal(fatal.length, 1, 'onFatal called once');
});

void t.test('the runnable echo server, session-id server crashing every 50 ms: exit 1 and one clear log line', async (t) => {
  const echo = await bundleBin(t, 'echo');
  const server = await spawnServer(t, echo, ['--fault-session-ids', '50']);
  const guard = setTimeout(() => server.child.kill('SIGKILL'), 10_000);
  const exit = await server.exited;
  clearTimeout(guard);
  t.equal(exit.signal, null, 'it exited by itself (not killed by the 10 s guard)');
  t.equal(exit.code, 1, 'exit code 1');
  const logs = server.logs();
  const why = logs.filter((l) => /restart intensity/.test(l.msg ?? ''));
  t.equal(why.length, 1, 'one line says why');
  t.equal(why[0]?.level, 50, 'at level error');
  t.match(why[0]?.msg, /no longer serving/);
  t.equal(logs.at(-1), why[0], 'and it is the last word');
  t.equal(server.stderr(), '', 'nothing on stderr (no stack trace, no unhandled rejection)');
});
