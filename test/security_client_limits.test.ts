// Per-client limits (issue 11 item 6): one client address cannot take the server's sessions.
// The attacker is bound to source address 127.0.0.2 (http.request's localAddress), the other
// clients come from 127.0.0.1, all on loopback. The setup buckets refill on a ManualClock.
import http from 'node:http';
import t from 'tap';
import {
  DEFAULT_MAX_SESSIONS_PER_CLIENT, DEFAULT_SETUP_RATE_PER_CLIENT, type CometServerOptions,
} from '../lib/index.js';
import { clientKey, TOO_MANY_SESSIONS_RETRY_AFTER_S } from '../lib/comet/client_limits.js';
import { ManualClock } from '../lib/otp/clock.js';
import { startServer, type Started } from './fixtures/http.js';
import { expectError, type RawHttpReply } from './fixtures/raw_socket.js';

const ATTACKER = '127.0.0.2';
const VICTIM = '127.0.0.1';

/** POST a JSON body from `localAddress`, on a fresh connection. */
function postFrom(port: number, localAddress: string, body: unknown, headers: Record<string, string> = {}): Promise<RawHttpReply> {
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, localAddress, path: '/comet', method: 'POST', agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers },
    }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const h: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h[k] = v;
        resolve({ status: res.statusCode ?? 0, headers: h, body: Buffer.concat(parts).toString('utf8') });
      });
    });
    req.setTimeout(10_000, () => req.destroy(new Error('no answer')));
    req.on('error', reject);
    req.end(text);
  });
}

const setupFrom = (s: Started, from: string, headers?: Record<string, string>): Promise<RawHttpReply> =>
  postFrom(s.port, from, { type: 'setup' }, headers);

function sidOf(r: RawHttpReply): string {
  const sid = (JSON.parse(r.body) as { sid?: unknown }).sid;
  if (r.status !== 200 || typeof sid !== 'string') throw new Error(`setup failed: ${r.status} ${r.body}`);
  return sid;
}

async function serverWith(t: Parameters<typeof startServer>[0], options: CometServerOptions): Promise<{ s: Started; clock: ManualClock }> {
  const clock = new ManualClock();
  const s = await startServer(t, { inactivity: 600_000, wait: 600_000, clock, ...options });
  return { s, clock };
}

void t.test('an attacker on 127.0.0.2 filling the server does not stop clients on 127.0.0.1 from setting up', async (t) => {
  // Without per-client limits, the attacker's 150 setups would take every one of the 150 slots.
  const { s, clock } = await serverWith(t, { maxSessions: 150 });
  const tally: Record<string, number> = {};
  for (let second = 0; second < 8; second++) {
    const burst = await Promise.all(Array.from({ length: 25 }, () => setupFrom(s, ATTACKER)));
    for (const r of burst) {
      const key = r.status === 200 ? '200' : `${r.status} ${(JSON.parse(r.body) as { error: string }).error}`;
      tally[key] = (tally[key] ?? 0) + 1;
    }
    clock.advance(1000);
  }
  // 25 a second: 20 served and 5 over the rate for 5 seconds (100 sessions), then over its share.
  t.same(tally, {
    '200': DEFAULT_MAX_SESSIONS_PER_CLIENT,
    '429 rate_limited': 4 * 5,
    '429 too_many_sessions': 3 * 25 + 5,
  }, `the attacker gets ${DEFAULT_MAX_SESSIONS_PER_CLIENT} sessions; the rest is 429, never the server's own 503`);

  for (let i = 0; i < 10; i++) t.equal((await setupFrom(s, VICTIM)).status, 200, `a client on 127.0.0.1 sets up (${i + 1})`);
});

void t.test('429 rate_limited: a bucket of setupRatePerClient, refilled every second, with Retry-After', async (t) => {
  const { s, clock } = await serverWith(t, {});
  const burst = await Promise.all(Array.from({ length: DEFAULT_SETUP_RATE_PER_CLIENT + 3 }, () => setupFrom(s, ATTACKER)));
  t.equal(burst.filter((r) => r.status === 200).length, DEFAULT_SETUP_RATE_PER_CLIENT, 'one second\'s worth of setups');
  const refused = burst.filter((r) => r.status !== 200);
  t.equal(refused.length, 3);
  for (const r of refused) {
    expectError(t, r, 429, 'rate_limited', 'a setup over the rate');
    t.equal(r.headers['retry-after'], '1', 'Retry-After: 1 (a token comes back within the second)');
  }
  t.equal((await setupFrom(s, VICTIM)).status, 200, 'another address is not affected');
  clock.advance(20);
  t.equal((await setupFrom(s, ATTACKER)).status, 429, '20 ms later: not yet a whole token');
  clock.advance(1000);
  t.equal((await setupFrom(s, ATTACKER)).status, 200, 'after the Retry-After, setups are served again');
});

void t.test('429 too_many_sessions: live sessions per client, counted down when a session ends', async (t) => {
  const { s } = await serverWith(t, { maxSessionsPerClient: 3, setupRatePerClient: 0 });
  const sids = [];
  for (let i = 0; i < 3; i++) sids.push(sidOf(await setupFrom(s, ATTACKER)));
  const refused = await setupFrom(s, ATTACKER);
  expectError(t, refused, 429, 'too_many_sessions', 'a fourth session');
  t.equal(refused.headers['retry-after'], String(TOO_MANY_SESSIONS_RETRY_AFTER_S), 'with Retry-After');
  t.equal((await setupFrom(s, VICTIM)).status, 200, 'another address sets up');
  const end = await postFrom(s.port, ATTACKER, { type: 'terminate', sid: sids[0], rid: 1 });
  t.equal(end.status, 200, 'one session terminated');
  t.equal((await setupFrom(s, ATTACKER)).status, 200, 'its slot is free again');
  t.equal((await setupFrom(s, ATTACKER)).status, 429, 'and only that one');
});

void t.test('0 turns each limit off', async (t) => {
  const { s } = await serverWith(t, { maxSessionsPerClient: 0, setupRatePerClient: 0 });
  const burst = await Promise.all(Array.from({ length: 150 }, () => setupFrom(s, ATTACKER)));
  t.equal(burst.filter((r) => r.status === 200).length, 150, '150 setups at once, all served');
});

void t.test('trustProxy: the last X-Forwarded-For entry is the client; off by default (the header is ignored)', async (t) => {
  const behind = await serverWith(t, { maxSessionsPerClient: 1, setupRatePerClient: 0, trustProxy: true });
  // The proxy on 127.0.0.2 appends the address it saw; what the client wrote before is not believed.
  t.equal((await setupFrom(behind.s, ATTACKER, { 'x-forwarded-for': '10.0.0.1' })).status, 200, 'client 10.0.0.1');
  t.equal((await setupFrom(behind.s, ATTACKER, { 'x-forwarded-for': '10.0.0.2' })).status, 200, 'client 10.0.0.2: another client behind the same proxy');
  t.equal((await setupFrom(behind.s, ATTACKER, { 'x-forwarded-for': '6.6.6.6, 10.0.0.1' })).status, 429, 'a forged first entry does not make 10.0.0.1 someone else');

  const direct = await serverWith(t, { maxSessionsPerClient: 1, setupRatePerClient: 0 });
  t.equal((await setupFrom(direct.s, ATTACKER, { 'x-forwarded-for': '10.0.0.1' })).status, 200);
  t.equal((await setupFrom(direct.s, ATTACKER, { 'x-forwarded-for': '10.0.0.2' })).status, 429, 'without trustProxy, a forged header changes nothing');
});

void t.test('clientKey: IPv4 as it is, IPv4-mapped IPv6 as IPv4, IPv6 by its /64', (t) => {
  t.equal(clientKey('127.0.0.2'), '127.0.0.2');
  t.equal(clientKey('::ffff:127.0.0.2'), '127.0.0.2');
  t.equal(clientKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  t.equal(clientKey('2001:db8:1:2::9'), '2001:db8:1:2::/64', 'one /64, whatever the interface id');
  t.equal(clientKey('2001:0db8:0001:0002:ffff::1%eth0'), '2001:db8:1:2::/64', 'leading zeros and zone ids');
  t.equal(clientKey('2001:db8::1'), '2001:db8:0:0::/64');
  t.equal(clientKey('::1'), '0:0:0:0::/64');
  t.end();
});
