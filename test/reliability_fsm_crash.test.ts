// A connection FSM crashes (the `fault` option makes its state function throw): only that
// session ends, with reason 'crash'; every HTTP request and handlePacket waiting on it is
// answered at once (the held poll by terminate, the others by the call's monitor), never after a
// timeout; its CometClient reconnects; every other session keeps exchanging messages, none lost.
//
// `wait` is 60 s: a request that waited for a timeout instead of being answered would run into
// the fixture's 10 s request deadline and the subtest's timeout, and fail.
import t from 'tap';
import { CometClient, type CloseEvent, type OpenEvent } from '../lib/client/index.js';
import type { ConnectionEvent, Sid } from '../lib/index.js';
import { WireClient, fields, fsmHandled, post, startServer, waitFor } from './fixtures/http.js';

const LONG_WAIT_MS = 60_000;
const SUBTEST = { timeout: 20_000 };

/** A fault probe: the FSM of an armed sid throws on the listed events. */
function faults(types: readonly ConnectionEvent['type'][]): { armed: Set<string>; fault: (sid: Sid, type: ConnectionEvent['type']) => boolean } {
  const armed = new Set<string>();
  return { armed, fault: (sid, type) => armed.has(sid) && types.includes(type) };
}

void t.test('over the wire: the held poll gets 200 from terminate, requests behind it 404, packets unknown_session, at once', SUBTEST, async (t) => {
  const probe = faults(['request', 'packet']);
  const { url, seen, comet } = await startServer(t, { wait: LONG_WAIT_MS, inactivity: LONG_WAIT_MS, fault: probe.fault }, { echo: true });
  const victim = await WireClient.open(url);
  const others = await Promise.all(Array.from({ length: 5 }, () => WireClient.open(url)));

  await comet.handlePacket(victim.sid, 'before');
  t.same((await victim.request()).status, 200);
  t.same(victim.data, ['before'], 'the victim had a working session');

  // Every session has a poll held; the victim's acks 'before', so it has nothing pending.
  const victimHeld = victim.request();
  const othersHeld = others.map((c) => c.request());
  await fsmHandled(seen, victim.sid, 'request', 2);
  await waitFor(() => comet.heldCount() === 1 + others.length, 'all polls held');

  probe.armed.add(victim.sid);
  // Two requests at once: whichever the FSM takes first crashes it; the other is queued in its
  // mailbox behind the crash or finds no session. Neither may wait.
  const [r3, r4] = await Promise.all([
    post(url, { sid: victim.sid, rid: 3, ack: 1 }),
    post(url, { sid: victim.sid, rid: 4, ack: 1 }),
  ]);
  const held = await victimHeld;
  t.equal(held.status, 200, 'the held poll is answered by terminate');
  t.same(held.body, { rid: 2, packets: [] }, 'with what the session had: nothing pending');
  for (const r of [r3, r4]) {
    t.equal(r.status, 404, 'a request behind the crash: 404');
    t.equal(fields(r)['error'], 'unknown_session');
  }
  await t.rejects(comet.handlePacket(victim.sid, 'too late'), { code: 'unknown_session' }, 'handlePacket after the crash');

  await waitFor(() => seen.ends.length === 1, 'the session end');
  t.same(seen.ends, [{ sid: victim.sid, reason: 'crash' }], 'only the victim ended, with reason crash');
  t.ok(seen.logs.some((l) => l.level === 'error' && /crashed/.test(l.msg ?? '')), 'the crash is logged');
  t.notOk(comet.sessions().includes(victim.sid));

  // The others never noticed: their polls are still held, and answered by their own packets.
  t.equal(comet.heldCount(), others.length, 'the other polls are still held');
  for (const [i, c] of others.entries()) await comet.handlePacket(c.sid, `after ${i}`);
  for (const [i, p] of othersHeld.entries()) {
    const r = await p;
    t.equal(r.status, 200);
    t.same(others[i]?.data, [`after ${i}`], `session ${i} got its packet`);
  }
  const fresh = await WireClient.open(url);
  t.equal((await fresh.request({ messages: ['new'] })).status, 200, 'a new session works');
});

void t.test('packets queued in the mailbox behind a crash: every handlePacket rejects unknown_session at once', SUBTEST, async (t) => {
  const probe = faults(['packet']);
  const { url, seen, comet } = await startServer(t, { wait: LONG_WAIT_MS, inactivity: LONG_WAIT_MS, fault: probe.fault });
  const victim = await WireClient.open(url);
  const held = victim.request();
  await fsmHandled(seen, victim.sid, 'request');
  probe.armed.add(victim.sid);
  // Sent in one tick: the first crashes the FSM, the other four wait in its mailbox. Without a
  // monitor they would wait for PACKET_TIMEOUT_MS and reject with a timeout instead.
  const pushes = Array.from({ length: 5 }, (_, i) => comet.handlePacket(victim.sid, `p${i}`));
  const outcomes = await Promise.allSettled(pushes);
  t.same(outcomes.map((o) => (o.status === 'rejected' ? (o.reason as { code?: unknown }).code : 'fulfilled')), Array(5).fill('unknown_session'));
  t.equal((await held).status, 200, 'the held poll is answered');
  t.same(seen.ends, [{ sid: victim.sid, reason: 'crash' }]);
});

void t.test('CometClient: the crashed session\'s client reconnects; 20 other clients lose nothing', SUBTEST, async (t) => {
  const probe = faults(['packet', 'request']);
  const { url, seen, comet } = await startServer(t, { wait: LONG_WAIT_MS, inactivity: LONG_WAIT_MS, fault: probe.fault }, { echo: true });
  const opts = { reconnect: true, retryBaseMs: 10, retryCapMs: 100 } as const;

  const victim = new CometClient(url, opts);
  t.teardown(() => victim.close());
  const opens: OpenEvent[] = [];
  const closes: CloseEvent[] = [];
  const victimGot: unknown[] = [];
  victim.on('open', (e) => opens.push(e));
  victim.on('close', (e) => closes.push(e));
  victim.on('message', (m) => victimGot.push(m.data));
  const first = await victim.connect();

  const CLIENTS = 20;
  const MESSAGES = 25;
  const clients = Array.from({ length: CLIENTS }, () => new CometClient(url, opts));
  const got: unknown[][] = clients.map(() => []);
  clients.forEach((c, i) => {
    t.teardown(() => c.close());
    c.on('message', (m) => got[i]?.push(m.data));
  });
  await Promise.all(clients.map((c) => c.connect()));
  await victim.send('v-before');
  await waitFor(() => victimGot.length === 1, 'the victim\'s first echo');

  // The others talk before, during and after the crash.
  const talking = Promise.all(clients.map(async (c, i) => {
    for (let n = 0; n < MESSAGES; n++) {
      await c.send(`c${i}-${n}`);
      if (n % 5 === 0) await new Promise((r) => setTimeout(r, 5));
    }
  }));
  await waitFor(() => got.some((g) => g.length >= 5), 'the others to be mid-conversation');
  await fsmHandled(seen, first, 'request');
  probe.armed.add(first);
  await t.rejects(comet.handlePacket(first, 'boom'), { code: 'unknown_session' }, 'the poke that crashes it');

  await waitFor(() => opens.length === 2, 'the victim to reconnect', 10_000);
  t.same(closes.map((c) => [c.reason, c.sid, c.willReconnect]), [['expired', first, true]], 'the client saw its session expire');
  t.equal(opens[1]?.previousSid, first, 'and opened a new one in its place');
  await victim.send('v-after');
  await waitFor(() => victimGot.includes('v-after'), 'the echo on the new session');
  t.same(victimGot, ['v-before', 'v-after'], 'the victim talks again');

  await talking;
  await waitFor(() => got.every((g) => g.length >= MESSAGES), 'every echo', 10_000);
  for (const [i, g] of got.entries()) {
    t.same(g, Array.from({ length: MESSAGES }, (_, n) => `c${i}-${n}`), `client ${i}: ${MESSAGES} echoes, once each, in order`);
  }
  const delivered = seen.messages.filter((m) => typeof m.data === 'string' && m.data.startsWith('c')).length;
  t.equal(delivered, CLIENTS * MESSAGES, 'the application got each message once');
  t.same(seen.ends, [{ sid: first, reason: 'crash' }], 'only the victim\'s session ended');
});

void t.test('messages buffered behind a missing rid reach the application when the session crashes or shuts down', SUBTEST, async (t) => {
  // rid 2 arrives, rid 1 never does (its request is still being retried when the session ends).
  // rid 2 was answered 200, so its client holds the message accepted and never sends it again:
  // the session must hand it to the application before it ends, or it is lost.
  const probe = faults(['packet']);
  const order: string[] = [];
  const { url, seen, comet } = await startServer(t, {
    wait: LONG_WAIT_MS, inactivity: LONG_WAIT_MS, fault: probe.fault,
    onMessage: (sid, data) => {
      order.push(`message ${sid} ${String(data)}`);
    },
    onSessionEnd: (sid, reason) => {
      order.push(`end ${sid} ${reason}`);
    },
  });
  const crashed = await WireClient.open(url);
  const shut = await WireClient.open(url);

  const crashedHeld = crashed.request({ rid: 2, messages: ['behind a gap'] });
  const shutHeld = shut.request({ rid: 2, messages: ['also behind a gap'] });
  await fsmHandled(seen, crashed.sid, 'request');
  await fsmHandled(seen, shut.sid, 'request');
  t.same(seen.messages, [], 'buffered: nothing delivered while rid 1 is missing');

  probe.armed.add(crashed.sid);
  await t.rejects(comet.handlePacket(crashed.sid, 'boom'), { code: 'unknown_session' });
  t.equal((await crashedHeld).status, 200, 'the request that carried it was answered 200 (accepted)');
  await comet.close();
  t.equal((await shutHeld).status, 200);

  t.same(order, [
    `message ${crashed.sid} behind a gap`,
    `end ${crashed.sid} crash`,
    `message ${shut.sid} also behind a gap`,
    `end ${shut.sid} shutdown`,
  ], 'each buffered message delivered once, before its session\'s end');
});
