// Application code is not trusted: a hook that throws or rejects (onSession, onMessage,
// onSessionEnd) is logged and the session goes on, and the sessions beside it never notice.
// Over real HTTP on 127.0.0.1, with a recording logger.
import t from 'tap';
import { sidTag, type Sid } from '../lib/index.js';
import { WireClient, startServer, waitFor, type Seen } from './fixtures/http.js';

/** The 'application hook failed' log entries of one hook, each with the session it names:
 *  the sid's log tag (a log line never carries the sid itself). */
function hookFailures(seen: Seen, hook: string): { sid: unknown; err: unknown }[] {
  return seen.logs
    .filter((l) => l.level === 'error' && l.msg === 'application hook failed' && (l.obj as { hook?: unknown }).hook === hook)
    .map((l) => {
      const o = l.obj as { sid?: unknown; session?: unknown; err?: unknown };
      return { sid: o.sid ?? o.session, err: o.err };
    });
}

/** Send `messages` and poll until every echo has come back; the session's data afterwards. */
async function exchange(c: WireClient, messages: unknown[]): Promise<unknown[]> {
  const want = c.data.length + messages.length;
  const r = await c.request({ messages });
  if (r.status !== 200) throw new Error(`request refused: ${r.status} ${r.text}`);
  for (let i = 0; i < 20 && c.data.length < want; i++) {
    const p = await c.request();
    if (p.status !== 200) throw new Error(`poll refused: ${p.status} ${p.text}`);
  }
  return c.data;
}

void t.test('onMessage throwing, rejecting at once and rejecting later: logged, every message still delivered, the session goes on', async (t) => {
  const { url, seen, comet } = await startServer(t, {
    onMessage(_sid, data) {
      if (data === 'throw') throw new Error('app bug: throw');
      if (data === 'reject') return Promise.reject(new Error('app bug: reject'));
      if (data === 'reject-later') return new Promise<void>((_, reject) => setTimeout(() => reject(new Error('app bug: late')), 20));
      return undefined;
    },
  }, { echo: true });
  const victim = await WireClient.open(url);
  const bystander = await WireClient.open(url);

  // The bystander talks while the victim's hook fails, on the same server.
  const [victimData, bystanderData] = await Promise.all([
    exchange(victim, ['throw', 'a', 'reject', 'b', 'reject-later', 'c']),
    exchange(bystander, ['x', 'y', 'z']),
  ]);
  t.same(victimData, ['throw', 'a', 'reject', 'b', 'reject-later', 'c'], 'every message reached the application and came back, in order');
  t.same(bystanderData, ['x', 'y', 'z'], 'the other session is unaffected');

  await waitFor(() => hookFailures(seen, 'onMessage').length === 3, 'three onMessage failures logged');
  t.same(hookFailures(seen, 'onMessage'), [
    { sid: sidTag(victim.sid), err: 'app bug: throw' },
    { sid: sidTag(victim.sid), err: 'app bug: reject' },
    { sid: sidTag(victim.sid), err: 'app bug: late' },
  ], 'each failure logged once, with the session and the error');

  t.same(await exchange(victim, ['after']), ['throw', 'a', 'reject', 'b', 'reject-later', 'c', 'after'], 'the session goes on');
  t.same(seen.ends, [], 'no session ended');
  t.same(new Set(comet.sessions()), new Set([victim.sid, bystander.sid]));
});

void t.test('onSession throwing or rejecting: logged, the session is set up and works', async (t) => {
  let n = 0;
  const { url, seen } = await startServer(t, {
    onSession() {
      n++;
      if (n === 1) throw new Error('app bug: onSession throw');
      if (n === 2) return Promise.reject(new Error('app bug: onSession reject'));
      return undefined;
    },
  }, { echo: true });
  const thrower = await WireClient.open(url);
  const rejecter = await WireClient.open(url);
  const fine = await WireClient.open(url);

  await waitFor(() => hookFailures(seen, 'onSession').length === 2, 'two onSession failures logged');
  t.same(hookFailures(seen, 'onSession'), [
    { sid: sidTag(thrower.sid), err: 'app bug: onSession throw' },
    { sid: sidTag(rejecter.sid), err: 'app bug: onSession reject' },
  ]);
  for (const [name, c] of [['thrower', thrower], ['rejecter', rejecter], ['fine', fine]] as const) {
    t.same(await exchange(c, [`hello ${name}`]), [`hello ${name}`], `${name}: messages go both ways`);
  }
  t.same(seen.ends, [], 'no session ended');
});

void t.test('onSessionEnd throwing or rejecting: logged, the end is clean, the server serves on', async (t) => {
  let n = 0;
  const armed = new Set<Sid>();
  const { url, seen, comet } = await startServer(t, {
    wait: 30_000,
    onSessionEnd() {
      n++;
      if (n === 1) throw new Error('app bug: onSessionEnd throw');
      if (n === 2) return Promise.reject(new Error('app bug: onSessionEnd reject'));
      if (n === 3) throw new Error('app bug: onSessionEnd throw after a crash');
      return undefined;
    },
    // The third session ends by a crash, with a held poll: the throwing hook must not keep
    // terminate from answering it.
    fault: (sid, type) => armed.has(sid) && type === 'packet',
  }, { echo: true });
  const bystander = await WireClient.open(url);
  const a = await WireClient.open(url);
  const b = await WireClient.open(url);
  const c = await WireClient.open(url);

  t.equal((await a.terminate()).status, 200, 'terminate answered (hook throws)');
  t.equal((await b.terminate()).status, 200, 'terminate answered (hook rejects)');
  const held = c.request();
  await waitFor(() => comet.heldCount() === 1, 'the poll of c to be held');
  armed.add(c.sid);
  await t.rejects(comet.handlePacket(c.sid, 'crash it'), { code: 'unknown_session' });
  const heldReply = await held;
  t.equal(heldReply.status, 200, 'the held poll of the crashed session is answered (hook throws)');

  await waitFor(() => hookFailures(seen, 'onSessionEnd').length === 3, 'three onSessionEnd failures logged');
  t.same(hookFailures(seen, 'onSessionEnd'), [
    { sid: sidTag(a.sid), err: 'app bug: onSessionEnd throw' },
    { sid: sidTag(b.sid), err: 'app bug: onSessionEnd reject' },
    { sid: sidTag(c.sid), err: 'app bug: onSessionEnd throw after a crash' },
  ]);
  t.same(seen.ends, [
    { sid: a.sid, reason: 'terminate' },
    { sid: b.sid, reason: 'terminate' },
    { sid: c.sid, reason: 'crash' },
  ]);
  t.same(comet.sessions(), [bystander.sid], 'the ended sessions are gone, the other stays');
  t.notOk(seen.logs.some((l) => l.msg?.includes('terminate threw')), 'the hook failure never reached proc_lib');

  t.same(await exchange(bystander, ['still here']), ['still here'], 'the other session is unaffected');
  const fresh = await WireClient.open(url);
  t.same(await exchange(fresh, ['new']), ['new'], 'a new session works');
});
