// Sids are the only credential of a session. Over real HTTP against createCometServer on
// 127.0.0.1:0: they cannot be guessed (1,000 random and every near-miss sid -> 404
// unknown_session, no data, no effect on the live session), an ended sid answers like one that
// never existed, and the lookup is a Map keyed by the full sid string (no prefix comparison an
// attacker could time). Timing itself is not asserted: the test checks the mechanism instead
// (see docs/reliability.md). Randomness over 10,000 setups: security_sid_randomness.test.ts.
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { packetsOf, post, setup, type Reply } from './fixtures/http.js';
import { assertStillServes, expectError, startProbedServer } from './fixtures/raw_socket.js';

/** Run `n` jobs, `width` at a time. */
async function pool<T>(n: number, width: number, job: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array<T>(n);
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) {
      const i = next++;
      out[i] = await job(i);
    }
  }));
  return out;
}

const HEX = '0123456789abcdef';

/** Every near miss of `sid` an attacker holding part of it, or a typo, would try. */
function nearMisses(sid: string): string[] {
  const out = new Set<string>();
  for (let i = 0; i < sid.length; i++) {
    const c = sid[i] ?? '';
    const other = c === '-' ? '0' : (HEX[(HEX.indexOf(c) + 1) % 16] ?? '0');
    out.add(sid.slice(0, i) + other + sid.slice(i + 1)); // one character changed
    out.add(sid.slice(0, i) + sid.slice(i + 1)); // one character dropped
  }
  for (let k = 1; k < sid.length; k++) out.add(sid.slice(0, k)); // truncated
  for (const suffix of ['0', 'f', '-', ' ', '\n', '\t', '\u0000', '%00', '/', sid]) out.add(sid + suffix);
  for (const prefix of ['0', ' ', 'session:', '/']) out.add(prefix + sid);
  out.add(sid.toUpperCase());
  out.add(sid.replaceAll('-', ''));
  out.add(sid.replaceAll('-', '\u2010')); // a Unicode hyphen that looks the same
  out.add(encodeURIComponent(sid).replaceAll('-', '%2D'));
  out.add(sid.normalize('NFKC').replace(/[0-9]/, (d) => String.fromCharCode(0xff10 + Number(d)))); // a full-width digit
  out.delete(sid);
  return [...out];
}

void t.test('1,000 random sids and every near miss of a live sid: 404 unknown_session, no data, no effect', async (t) => {
  const { url, comet, seen } = await startProbedServer(t);
  const victim = await setup(url);
  for (const p of ['secret-1', 'secret-2', 'secret-3']) await comet.handlePacket(victim, p);
  const eventsBefore = seen.events.filter((e) => e.sid === victim).length;

  const guesses = [...Array.from({ length: 1000 }, () => randomUUID()), ...nearMisses(victim)];
  t.ok(guesses.length > 1100, `${guesses.length} guesses`);
  // Each guess tries everything a request can do: send a message, ack the victim's packets, end it.
  const replies = await pool(guesses.length, 32, async (i) => {
    const sid = guesses[i] as string;
    const request = await post(url, { sid, rid: 1, ack: 3, messages: ['attack'] });
    const terminate = await post(url, { type: 'terminate', sid, rid: 2, ack: 3 });
    return [request, terminate] as const;
  });
  const expected = '{"error":"unknown_session","message":"no such session"}';
  const odd = replies.flat().filter((r) => r.status !== 404 || r.text !== expected);
  t.same(odd.map((r) => `${r.status} ${r.text}`), [], 'every guess got exactly the same 404 unknown_session body');
  expectError(t, replies[0]?.[0] as Reply, 404, 'unknown_session', 'a random sid');
  const leaked = replies.flat().filter((r) => r.text.includes('secret') || r.text.includes(victim) || r.text.includes('packets'));
  t.same(leaked, [], 'no reply carries a packet, the live sid, or any data');

  t.same(seen.messages.filter((m) => m.data === 'attack'), [], 'no attack message reached any session');
  t.equal(seen.events.filter((e) => e.sid === victim).length, eventsBefore, 'the victim\'s FSM received no event from any guess');
  t.same(comet.sessions(), [victim], 'no session was created or ended');
  const r = await post(url, { sid: victim, rid: 1, ack: 0 });
  t.same(packetsOf(r).map((p) => p.data), ['secret-1', 'secret-2', 'secret-3'], 'the victim still has every packet: nothing was acked or taken');
  await assertStillServes(t, url, 'sid guessing');
});

void t.test('a sid that ended answers exactly like one that never existed (no enumeration)', async (t) => {
  const { url, comet } = await startProbedServer(t);
  const ended = await setup(url);
  await comet.handlePacket(ended, 'x');
  await post(url, { type: 'terminate', sid: ended, rid: 1 });
  const asEnded = await post(url, { sid: ended, rid: 2, ack: 1 });
  const asNever = await post(url, { sid: randomUUID(), rid: 2, ack: 1 });
  const head = (r: Reply): string[] => {
    const out: string[] = [];
    r.headers.forEach((value, name) => {
      if (name !== 'date') out.push(`${name}: ${value}`);
    });
    return out;
  };
  t.equal(asEnded.status, asNever.status, 'same status');
  t.equal(asEnded.text, asNever.text, 'same body');
  t.same(head(asEnded), head(asNever), 'same headers');
});

/**
 * Record, while `run` runs, every Map lookup whose key mentions one of `needles`, and every
 * string search or comparison (`startsWith`, `indexOf`, `localeCompare`, ...) on or with them.
 * The spies call the originals and never themselves (a reentrancy guard), and are removed after.
 */
async function spyLookups<T>(needles: readonly string[], run: () => Promise<T>): Promise<{ result: T; mapGets: string[]; stringOps: string[] }> {
  const mapGets: string[] = [];
  const stringOps: string[] = [];
  /* eslint-disable @typescript-eslint/unbound-method */
  const originalGet = Map.prototype.get;
  const originalIncludes = String.prototype.includes;
  const ops = ['startsWith', 'endsWith', 'indexOf', 'includes', 'localeCompare', 'lastIndexOf', 'match', 'search'] as const;
  const originals = ops.map((name) => [name, String.prototype[name]] as const);
  /* eslint-enable @typescript-eslint/unbound-method */
  let inSpy = false;
  const mentions = (v: unknown): boolean => typeof v === 'string' && needles.some((n) => originalIncludes.call(v, n));
  const record = (list: string[], entry: () => string, ...values: unknown[]): void => {
    if (inSpy) return;
    inSpy = true;
    try {
      if (values.some(mentions)) list.push(entry());
    } finally {
      inSpy = false;
    }
  };
  Map.prototype.get = function get(this: Map<unknown, unknown>, key: unknown): unknown {
    record(mapGets, () => String(key), key);
    return originalGet.call(this, key);
  };
  for (const [name, fn] of originals) {
    Object.defineProperty(String.prototype, name, {
      configurable: true, writable: true,
      value: function spied(this: string, ...args: unknown[]): unknown {
        record(stringOps, () => `${name}(${args.map((a) => String(a)).join(', ')})`, String(this), ...args);
        return (fn as (...a: unknown[]) => unknown).apply(this, args);
      },
    });
  }
  try {
    return { result: await run(), mapGets, stringOps };
  } finally {
    Map.prototype.get = originalGet;
    for (const [name, fn] of originals) Object.defineProperty(String.prototype, name, { configurable: true, writable: true, value: fn });
  }
}

void t.test('the lookup mechanism: one Map.get on the full sid, no prefix comparison with live sids', async (t) => {
  const { url } = await startProbedServer(t);
  const live = await setup(url);
  // Shares 35 of 36 characters with the live sid: the best a timing attack could hope to learn.
  const nearMiss = live.slice(0, -1) + (live.endsWith('0') ? '1' : '0');
  const { result, mapGets, stringOps } = await spyLookups([live, nearMiss], () => post(url, { sid: nearMiss, rid: 1 }));
  expectError(t, result, 404, 'unknown_session', 'the near miss');
  t.ok(mapGets.includes(nearMiss), 'the session table was asked, by Map.get, for the near miss\'s full sid');
  t.same(mapGets.filter((k) => k.includes(live)), [], 'the live sid was never used as a key');
  t.same(stringOps, [], 'no string search or comparison ran on either sid (no startsWith, indexOf, localeCompare, ...)');
  // The same for a random sid: the work done does not depend on how close the guess is.
  const random = randomUUID();
  const second = await spyLookups([random, live], () => post(url, { sid: random, rid: 1 }));
  t.same(second.mapGets.map((k) => k.replace(random, 'SID')), mapGets.map((k) => k.replace(nearMiss, 'SID')), 'a random sid takes the same lookups as a near miss');
  t.same(second.stringOps, []);
});
