/**
 * lib/cluster/pending_calls.ts: the forwarded calls a node waits on, by call id, in reused slots.
 * What the router relies on: an id answers its own call once and never another (a late reply after
 * a timeout must not settle the call that took its slot), ids from other nodes that are not ours
 * find nothing, and a full table refuses instead of growing without bound.
 */
import t from 'tap';
import { PENDING_CALL_SLOTS, PendingCalls } from '../lib/cluster/pending_calls.js';
import { isCometError } from '../lib/comet/errors.js';

void t.test('pending_calls_take_once: an id takes its own call, once', (t) => {
  const calls = new PendingCalls<string>();
  const a = calls.add('a');
  const b = calls.add('b');
  t.ok(a !== undefined && b !== undefined && a !== b, 'two ids');
  t.ok(Number.isSafeInteger(a) && (a ?? 0) > 0, 'a positive safe integer');
  t.equal(calls.size, 2);
  t.ok(calls.has(a ?? 0));
  t.equal(calls.take(a ?? 0), 'a');
  t.equal(calls.take(a ?? 0), undefined, 'not twice');
  t.notOk(calls.has(a ?? 0));
  t.equal(calls.size, 1);
  t.equal(calls.take(b ?? 0), 'b');
  t.equal(calls.size, 0);
  t.end();
});

void t.test('pending_calls_late_reply: a slot taken again has a new id; the old one finds nothing', (t) => {
  const calls = new PendingCalls<string>();
  const first = calls.add('first') ?? 0;
  calls.take(first); // answered (or timed out)
  const second = calls.add('second') ?? 0;
  t.not(second, first, 'the reused slot has a new id');
  t.equal(calls.take(first), undefined, 'a late reply to the first call does not settle the second');
  t.ok(calls.has(second));
  t.equal(calls.take(second), 'second');
  t.end();
});

void t.test('pending_calls_foreign_ids: ids a node never handed out find nothing', (t) => {
  const calls = new PendingCalls<string>();
  const id = calls.add('x') ?? 0;
  for (const bad of [0, -1, -id, 1.5, id + 0.5, Number.NaN, Infinity, Number.MAX_SAFE_INTEGER, 2 ** 60, id + PENDING_CALL_SLOTS, id + 1]) {
    t.equal(calls.take(bad), undefined, `id ${String(bad)}`);
  }
  t.equal(calls.size, 1, 'the call in flight is still there');
  t.equal(calls.take(id), 'x');
  t.end();
});

void t.test('pending_calls_entries: a copy of the calls in flight, safe to take from while iterating', (t) => {
  const calls = new PendingCalls<string>();
  const ids = ['a', 'b', 'c'].map((v) => calls.add(v) ?? 0);
  calls.take(ids[1] ?? 0);
  const seen: string[] = [];
  for (const [id, v] of calls.entries()) {
    seen.push(v);
    t.equal(calls.take(id), v, 'each entry takes its own call');
  }
  t.strictSame(seen.sort(), ['a', 'c']);
  t.equal(calls.size, 0);
  t.strictSame(calls.entries(), []);
  t.end();
});

void t.test('pending_calls_full: past its slots it refuses, and takes again once one is free', (t) => {
  const calls = new PendingCalls<number>(4);
  const ids = [1, 2, 3, 4].map((v) => calls.add(v));
  t.ok(ids.every((id) => id !== undefined), 'four fit');
  t.equal(calls.add(5), undefined, 'the fifth is refused');
  t.equal(calls.size, 4);
  calls.take(ids[2] ?? 0);
  const again = calls.add(5);
  t.not(again, undefined, 'a freed slot takes the next call');
  t.equal(calls.take(again ?? 0), 5);
  t.end();
});

void t.test('pending_calls_bad_slots: a slot count out of range is refused with a code', (t) => {
  for (const bad of [0, -1, 1.5, PENDING_CALL_SLOTS + 1, Number.NaN]) {
    let code: string | undefined;
    try {
      new PendingCalls(bad);
    } catch (err) {
      code = isCometError(err) ? err.code : 'not a CometError';
    }
    t.equal(code, 'ERR_COMET_INVALID_OPTION', `slots ${String(bad)}`);
  }
  t.end();
});

void t.test('pending_calls_generations: ids start again after the last generation of a slot, and stay safe integers', (t) => {
  const calls = new PendingCalls<number>(2, 3);
  const ids: number[] = [];
  for (let i = 0; i < 7; i++) {
    const id = calls.add(i) ?? 0;
    ids.push(id);
    t.equal(calls.take(id), i);
  }
  t.strictSame(ids, [2, 4, 6, 2, 4, 6, 2], 'slot 0, generations 1 to 3, then 1 again');
  const big = new PendingCalls<number>();
  const id = big.add(1) ?? 0;
  t.ok(Number.isSafeInteger(id), 'the default keeps ids safe integers');
  let code: string | undefined;
  try {
    new PendingCalls(PENDING_CALL_SLOTS, Math.floor(Number.MAX_SAFE_INTEGER / PENDING_CALL_SLOTS));
  } catch (err) {
    code = isCometError(err) ? err.code : 'not a CometError';
  }
  t.equal(code, 'ERR_COMET_INVALID_OPTION', 'generations that would leave the safe integers are refused');
  t.end();
});
