// Sids carry no structure an attacker could use: uuid v4 (122 random bits), unique over 10,000
// setups on a real createCometServer, uniform in every random digit and bit, independent from
// one to the next, with no shared prefixes beyond chance. The statistical bounds are set so a
// good source fails them with a probability below 1e-6 (no flaky assertions), and a control
// test shows the check does catch counters, clocks and shared prefixes.
//
// What statistics cannot show: whether the source is a CSPRNG rather than a good PRNG
// (Math.random passes too). That is the code's job: session_ids.ts uses uuid v4, which draws
// from crypto.getRandomValues.
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { ManualClock } from '../lib/otp/clock.js';
import { MANY_CLIENTS_ON_LOOPBACK, fields, post, waitFor } from './fixtures/http.js';
import { startProbedServer } from './fixtures/raw_socket.js';

const HEX = '0123456789abcdef';

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

/**
 * Problems that show structure in a set of uuid v4 sids: anything a random 122-bit source
 * would produce with a probability far below 1e-9. Empty for good sids.
 */
function structureProblems(sids: readonly string[]): string[] {
  const problems: string[] = [];
  const n = sids.length;
  const bad = sids.filter((s) => !/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(s));
  if (bad.length > 0) problems.push(`${bad.length} not uuid v4 (e.g. ${bad[0]})`);
  if (new Set(sids).size !== n) problems.push(`${n - new Set(sids).size} repeated`);
  // The 122 random bits: 30 free hex digits, and 2 free bits of the variant digit.
  const hex = sids.map((s) => s.replaceAll('-', ''));
  const free = [...Array(32).keys()].filter((i) => i !== 12 && i !== 16);
  for (const i of free) {
    const counts = new Array<number>(16).fill(0);
    for (const h of hex) counts[HEX.indexOf(h[i] ?? '')]! += 1;
    const e = n / 16;
    const chi2 = counts.reduce((a, c) => a + (c - e) ** 2 / e, 0);
    // 15 degrees of freedom: P(chi2 > 90) < 1e-11.
    if (chi2 > 90) problems.push(`hex digit ${i} is not uniform (chi2 ${chi2.toFixed(0)})`);
  }
  const bits = (h: string): number[] => free.flatMap((i) => [3, 2, 1, 0].map((b) => (HEX.indexOf(h[i] ?? '') >> b) & 1))
    .concat([1, 0].map((b) => (HEX.indexOf(h[16] ?? '') >> b) & 1));
  const bitRows = hex.map(bits);
  for (let b = 0; b < 122; b++) {
    const ones = bitRows.reduce((a, row) => a + (row[b] ?? 0), 0);
    // Binomial(n, 1/2): 8 standard deviations.
    if (Math.abs(ones - n / 2) > 8 * Math.sqrt(n / 4)) problems.push(`random bit ${b} is biased (${ones} of ${n})`);
  }
  // Consecutive sids are independent: about half of their random bits differ.
  let distance = 0;
  for (let i = 1; i < n; i++) {
    const a = bitRows[i - 1] ?? [];
    const c = bitRows[i] ?? [];
    for (let b = 0; b < 122; b++) distance += a[b] === c[b] ? 0 : 1;
  }
  const mean = distance / (n - 1);
  // Mean of n-1 Binomial(122, 1/2): sd about 5.5 / sqrt(n); allow 1 bit either way.
  if (Math.abs(mean - 61) > 1) problems.push(`consecutive sids differ in ${mean.toFixed(2)} of 122 random bits on average, not ~61`);
  // No shared prefixes beyond chance: among 10,000 random sids the longest common prefix of two
  // is about 7 hex digits; 12 or more has a probability below 1e-6.
  const sorted = [...hex].sort();
  let longest = 0;
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1] ?? '';
    const c = sorted[i] ?? '';
    let k = 0;
    while (k < a.length && a[k] === c[k]) k++;
    longest = Math.max(longest, k);
  }
  if (longest >= 12) problems.push(`two sids share a ${longest}-digit prefix`);
  return problems;
}

void t.test('sids: uuid v4, unique over 10,000 setups, no structure', async (t) => {
  // Sessions are ended in batches (a manual clock fires every dietimer at once), so the server
  // never holds more than 1,000: ids are checked for uniqueness over time, not just among live
  // ones. The first 1,000 setups go over HTTP; the other 9,000 call the same setup path
  // in-process (comet.api.handleSetup: session-id server, connection supervisor), which keeps
  // this file fast without changing what is measured.
  const clock = new ManualClock();
  const { url, comet } = await startProbedServer(t, { ...MANY_CLIENTS_ON_LOOPBACK, clock, inactivity: 1000 });
  const viaHttp = async (): Promise<{ status: number; sid: unknown }> => {
    const r = await post(url, { type: 'setup' });
    return { status: r.status, sid: fields(r)['sid'] };
  };
  const inProcess = async (): Promise<{ status: number; sid: unknown }> => {
    const r = await comet.api.handleSetup();
    return { status: r.status, sid: 'body' in r ? (r.body as { sid?: unknown }).sid : undefined };
  };
  // On a starved machine a setup may be refused with 503 (the session-id server did not answer
  // within SETUP_RETRY_MS): retry it, as the contract tells clients to.
  const withRetry = async (once: () => Promise<{ status: number; sid: unknown }>): Promise<string> => {
    for (let attempt = 0; attempt < 10; attempt++) {
      const r = await once();
      if (r.status === 200 && typeof r.sid === 'string') return r.sid;
      if (r.status !== 503) throw new Error(`setup failed: ${r.status}`);
    }
    throw new Error('setup refused 10 times');
  };
  const sids: string[] = [];
  for (let batch = 0; batch < 10; batch++) {
    sids.push(...await pool(1000, 16, () => withRetry(batch === 0 ? viaHttp : inProcess)));
    clock.advance(1000);
    await waitFor(() => comet.sessions().length === 0, 'the batch to end');
  }
  t.equal(sids.length, 10_000);
  t.same(structureProblems(sids), [], 'no structure found');
  t.ok(sids.every((s) => encodeURIComponent(s) === s), 'url-safe');
});

void t.test('the structure check is not blind: it catches counters, clocks and shared prefixes', (t) => {
  const asUuid = (h: string): string => `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${'89ab'[parseInt(h[16] ?? '0', 16) & 3]}${h.slice(17, 20)}-${h.slice(20, 32)}`;
  const randomHex = (): string => randomUUID().replaceAll('-', '');
  const counter = Array.from({ length: 10_000 }, (_, i) => asUuid(randomHex().slice(0, 20) + i.toString(16).padStart(12, '0')));
  const clockBased = Array.from({ length: 10_000 }, (_, i) => asUuid((1_700_000_000_000 + i * 7).toString(16).padStart(12, '0') + randomHex().slice(12)));
  const sharedPrefix: string[] = Array.from({ length: 10_000 }, () => randomUUID());
  const first = (sharedPrefix[0] ?? '').replaceAll('-', '');
  sharedPrefix[1] = asUuid(first.slice(0, 14) + randomHex().slice(14));
  t.not(structureProblems(counter).length, 0, `a counter is caught: ${structureProblems(counter)[0]}`);
  t.not(structureProblems(clockBased).length, 0, `a timestamp is caught: ${structureProblems(clockBased)[0]}`);
  t.not(structureProblems(sharedPrefix).length, 0, `a shared 14-digit prefix is caught: ${structureProblems(sharedPrefix)[0]}`);
  t.same(structureProblems(Array.from({ length: 10_000 }, () => randomUUID())), [], 'crypto.randomUUID passes');
  t.end();
});

