import t from 'tap';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { asRid } from '../lib/comet/ids.js';
import { JsonText } from '../lib/comet/json_text.js';
import { BATCH_OVERHEAD_BYTES, encodeBatch, Inbox, RID_WINDOW, type Batch, type InboxResult } from '../lib/comet/inbox.js';

type Step = readonly [rid: number, messages: readonly unknown[]];

const deliver = (...batches: unknown[][]): InboxResult => ({ kind: 'deliver', batches });
const DUP: InboxResult = { kind: 'duplicate' };
const BUF: InboxResult = { kind: 'buffered' };
const BAD: InboxResult = { kind: 'bad_rid' };

/** Rids 1..n, in order, each with one message `m<rid>`. */
const inOrder = (n: number): Step[] => Array.from({ length: n }, (_, i) => [i + 1, [`m${i + 1}`]] as const);

interface Row {
  readonly name: string;
  readonly before?: readonly Step[];
  readonly steps: readonly (readonly [rid: number, messages: readonly unknown[], expected: InboxResult])[];
  readonly highestSeen: number;
  readonly nextExpected: number;
  readonly bufferedCount?: number;
}

const table: readonly Row[] = [
  {
    name: 'in-order rids are delivered at once, each as its own batch',
    steps: [
      [1, ['a'], deliver(['a'])],
      [2, ['b', 'c'], deliver(['b', 'c'])],
      [3, [], deliver([])],
    ],
    highestSeen: 3,
    nextExpected: 4,
  },
  {
    name: 'after setup rid 16 is accepted (exactly 16 above 0)',
    steps: [[16, ['p'], BUF]],
    highestSeen: 16,
    nextExpected: 1,
    bufferedCount: 1,
  },
  {
    name: 'after setup rid 17 is bad_rid',
    steps: [[17, ['p'], BAD]],
    highestSeen: 0,
    nextExpected: 1,
  },
  {
    name: 'exactly 16 above the highest seen is accepted, 17 above is bad_rid',
    steps: [
      [1, ['a'], deliver(['a'])],
      [18, ['x'], BAD],
      [17, ['q'], BUF],
    ],
    highestSeen: 17,
    nextExpected: 2,
    bufferedCount: 1,
  },
  {
    name: 'exactly 16 below the highest seen is accepted (a duplicate), 17 below is bad_rid',
    before: inOrder(20),
    steps: [
      [4, ['m4'], DUP],
      [3, ['m3'], BAD],
    ],
    highestSeen: 20,
    nextExpected: 21,
  },
  {
    name: 'a bad_rid leaves no trace: the window does not move',
    steps: [
      [1, ['a'], deliver(['a'])],
      [40, ['x'], BAD],
      [17, ['q'], BUF],
    ],
    highestSeen: 17,
    nextExpected: 2,
  },
  {
    name: 'a retransmitted delivered rid is a duplicate, not delivered again',
    steps: [
      [1, ['a'], deliver(['a'])],
      [2, ['b'], deliver(['b'])],
      [1, ['a'], DUP],
      [2, ['b'], DUP],
    ],
    highestSeen: 2,
    nextExpected: 3,
  },
  {
    name: 'a retransmitted buffered rid is a duplicate; the first copy is delivered once',
    steps: [
      [2, ['b'], BUF],
      [2, ['b-again'], DUP],
      [1, ['a'], deliver(['a'], ['b'])],
      [2, ['b-third'], DUP],
    ],
    highestSeen: 2,
    nextExpected: 3,
  },
  {
    name: 'rid 2 before rid 1 waits for it, then both come out in rid order',
    steps: [
      [2, ['b'], BUF],
      [1, ['a'], deliver(['a'], ['b'])],
    ],
    highestSeen: 2,
    nextExpected: 3,
    bufferedCount: 0,
  },
  {
    name: 'a filled gap delivers every batch that follows it',
    steps: [
      [4, ['d'], BUF],
      [3, ['c'], BUF],
      [2, ['b'], BUF],
      [1, ['a'], deliver(['a'], ['b'], ['c'], ['d'])],
    ],
    highestSeen: 4,
    nextExpected: 5,
  },
  {
    name: 'a partly filled gap delivers only up to the next hole',
    steps: [
      [3, ['c'], BUF],
      [5, ['e'], BUF],
      [1, ['a'], deliver(['a'])],
      [4, ['d'], BUF],
      [2, ['b'], deliver(['b'], ['c'], ['d'], ['e'])],
    ],
    highestSeen: 5,
    nextExpected: 6,
  },
  {
    name: 'an empty request still fills a gap',
    steps: [
      [2, ['b'], BUF],
      [1, [], deliver([], ['b'])],
    ],
    highestSeen: 2,
    nextExpected: 3,
  },
  {
    name: 'an empty request is seen: its retransmission is a duplicate',
    steps: [
      [2, [], BUF],
      [2, [], DUP],
      [1, ['a'], deliver(['a'], [])],
      [1, [], DUP],
    ],
    highestSeen: 2,
    nextExpected: 3,
  },
  {
    name: 'a lower rid arriving late (within the window) is still delivered first',
    before: inOrder(3),
    steps: [
      [5, ['m5'], BUF],
      [20, ['m20'], BUF],
      [4, ['m4'], deliver(['m4'], ['m5'])],
    ],
    highestSeen: 20,
    nextExpected: 6,
    bufferedCount: 1,
  },
  {
    // Only a client breaking "+1 per request" gets here: rids 1..15 are out of the window for good.
    name: 'unseen rids the window left behind are stepped over, not waited for',
    steps: [
      [16, ['x'], BUF],
      [32, ['y'], deliver(['x'])],
      [1, ['late'], BAD],
      [17, ['m17'], deliver(['m17'])],
    ],
    highestSeen: 32,
    nextExpected: 18,
    bufferedCount: 1,
  },
  {
    name: 'stepping over a hole still delivers buffered rids on both sides of it, in order',
    steps: [
      [10, ['a'], BUF],
      [16, ['b'], BUF],
      [32, ['c'], deliver(['a'], ['b'])],
    ],
    highestSeen: 32,
    nextExpected: 17,
    bufferedCount: 1,
  },
];

for (const row of table) {
  void t.test(row.name, (t) => {
    const inbox = new Inbox();
    for (const [rid, messages] of row.before ?? []) {
      t.equal(inbox.accept(asRid(rid), messages).kind, 'deliver', `setup rid ${rid}`);
    }
    for (const [rid, messages, expected] of row.steps) {
      t.same(inbox.accept(asRid(rid), messages), expected, `rid ${rid}`);
    }
    t.equal(inbox.highestSeen, row.highestSeen, 'highestSeen');
    t.equal(inbox.nextExpected, row.nextExpected, 'nextExpected');
    if (row.bufferedCount !== undefined) t.equal(inbox.bufferedCount, row.bufferedCount, 'bufferedCount');
    t.end();
  });
}

void t.test('a fresh inbox expects rid 1 and has seen nothing', (t) => {
  const inbox = new Inbox();
  t.equal(RID_WINDOW, 16);
  t.equal(inbox.highestSeen, 0);
  t.equal(inbox.nextExpected, 1);
  t.equal(inbox.bufferedCount, 0);
  t.end();
});

void t.test('every rid 1..16 is accepted first after setup; 17 is not', (t) => {
  for (let rid = 1; rid <= RID_WINDOW + 1; rid++) {
    const kind = new Inbox().accept(asRid(rid), ['m']).kind;
    t.equal(kind, rid === 1 ? 'deliver' : rid <= RID_WINDOW ? 'buffered' : 'bad_rid', `rid ${rid}`);
  }
  t.end();
});

void t.test('an in-order batch is delivered as accepted; a buffered one is kept as the bytes of its JSON and parsed on delivery', (t) => {
  const inbox = new Inbox();
  const two = [{ b: [1, 2] }, 'é€'];
  const one = ['a'];
  inbox.accept(asRid(2), two);
  t.equal(inbox.bufferedBytes, encodeBatch(two).bytes, 'what the buffer holds is the text, counted in bytes');
  t.equal(encodeBatch(two).bytes, Buffer.byteLength(JSON.stringify(two)) + BATCH_OVERHEAD_BYTES, 'its UTF-8 bytes');
  two.length = 0; // the caller's array is not kept
  const r = inbox.accept(asRid(1), one);
  t.equal(r.kind, 'deliver');
  if (r.kind === 'deliver') {
    t.equal(r.batches[0], one, 'not buffered: the very array');
    t.strictSame(r.batches[1], [{ b: [1, 2] }, 'é€'], 'buffered: parsed again from its text');
  }
  t.equal(inbox.bufferedBytes, 0, 'delivered: nothing held');
  t.end();
});

void t.test('bufferedBytes follows what is buffered, and peek changes nothing', (t) => {
  const inbox = new Inbox();
  t.equal(inbox.peek(asRid(1)), 'deliver');
  t.equal(inbox.peek(asRid(3)), 'buffer');
  t.equal(inbox.peek(asRid(18)), 'bad_rid');
  t.equal(inbox.bufferedBytes, 0);
  t.equal(inbox.accept(asRid(3), ['x'.repeat(1000)]).kind, 'buffered');
  t.equal(inbox.accept(asRid(2), []).kind, 'buffered');
  t.equal(inbox.peek(asRid(3)), 'duplicate');
  t.equal(inbox.bufferedBytes, encodeBatch(['x'.repeat(1000)]).bytes + encodeBatch([]).bytes);
  t.equal(inbox.accept(asRid(1), []).kind, 'deliver');
  t.equal(inbox.bufferedBytes, 0);
  t.equal(inbox.peek(asRid(2)), 'duplicate');
  t.end();
});

for (const rid of [0, -1, 1.5, Number.NaN]) {
  void t.test(`rid ${rid} is rejected as a caller bug and changes nothing`, (t) => {
    const inbox = new Inbox();
    t.throws(() => inbox.accept(asRid(rid), []), { name: 'CometError', code: 'ERR_COMET_INVALID_RID' });
    t.equal(inbox.nextExpected, 1);
    t.equal(inbox.highestSeen, 0);
    t.end();
  });
}

void t.test('property: any rid sequence against a reference model with an unbounded seen-set', (t) => {
  // Rids are drawn relative to the highest seen so that most land near the window's edges.
  fc.assert(
    fc.property(fc.array(fc.integer({ min: -RID_WINDOW - 3, max: RID_WINDOW + 3 }), { maxLength: 120 }), (deltas) => {
      const inbox = new Inbox();
      const accepted = new Map<number, Batch>();
      const delivered: number[] = [];
      let hs = 0;
      deltas.forEach((delta, call) => {
        const rid = Math.max(1, hs + delta);
        const messages = [rid, call];
        const r = inbox.accept(asRid(rid), messages);
        if (Math.abs(rid - hs) > RID_WINDOW) {
          assert.equal(r.kind, 'bad_rid', `rid ${rid} hs ${hs}`);
        } else if (accepted.has(rid)) {
          assert.equal(r.kind, 'duplicate', `rid ${rid} seen`);
        } else {
          accepted.set(rid, messages);
          hs = Math.max(hs, rid);
          assert.ok(r.kind === 'deliver' || r.kind === 'buffered', `rid ${rid} accepted, got ${r.kind}`);
        }
        if (r.kind === 'deliver') {
          assert.ok(r.batches.length > 0);
          for (const batch of r.batches) {
            const batchRid = batch[0] as number;
            assert.deepEqual(batch, accepted.get(batchRid), 'the first accepted copy is what is delivered');
            assert.ok(batchRid > (delivered.at(-1) ?? 0), 'rid order, never twice');
            delivered.push(batchRid);
          }
        }
        // Exactly the accepted rids below the lowest rid that is unseen and still reachable.
        const floor = hs - RID_WINDOW;
        let next = 1;
        while (accepted.has(next) || next < floor) next++;
        assert.deepEqual(
          delivered,
          [...accepted.keys()].filter((k) => k < next).sort((a, b) => a - b),
        );
        assert.equal(inbox.nextExpected, next);
        assert.equal(inbox.highestSeen, hs);
        assert.equal(inbox.bufferedCount, accepted.size - delivered.length);
        const held = [...accepted.keys()].filter((k) => k >= next);
        assert.equal(inbox.bufferedBytes, held.reduce((sum, k) => sum + encodeBatch(accepted.get(k) ?? []).bytes, 0), 'bytes of exactly the buffered batches');
        assert.ok(inbox.bufferedCount <= RID_WINDOW, 'the buffer stays bounded');
      });
    }),
    { numRuns: 500 },
  );
  t.pass('matched the model on every call');
  t.end();
});

void t.test('property: a conforming client (reordered within the window, retransmitting) gets exactly-once in order', (t) => {
  const scenario = fc.integer({ min: 1, max: 60 }).chain((n) =>
    fc.record({
      n: fc.constant(n),
      // A rid is overtaken by at most 15 later ones, so its first arrival is always within the window.
      jitter: fc.array(fc.integer({ min: 0, max: RID_WINDOW - 1 }), { minLength: n, maxLength: n }),
      empty: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
      retransmits: fc.array(fc.record({ pick: fc.nat(), delay: fc.nat({ max: 40 }) }), { maxLength: 30 }),
    }),
  );
  fc.assert(
    fc.property(scenario, ({ n, jitter, empty, retransmits }) => {
      const rids = Array.from({ length: n }, (_, i) => i + 1);
      const order = rids
        .map((rid) => ({ rid, key: rid + (jitter[rid - 1] ?? 0) }))
        .sort((a, b) => a.key - b.key || a.rid - b.rid)
        .map((x) => x.rid);
      const arrivals = [...order];
      for (const { pick, delay } of retransmits) {
        const rid = order[pick % n] ?? 1;
        const at = arrivals.indexOf(rid) + 1 + delay;
        arrivals.splice(Math.min(at, arrivals.length), 0, rid);
      }
      const firstCopy = new Map<number, Batch>(
        rids.map((rid) => [rid, empty[rid - 1] === true ? [] : [`m${rid}`, { rid }]] as const),
      );

      const inbox = new Inbox();
      const seen = new Set<number>();
      const delivered: number[] = [];
      let hs = 0;
      for (const rid of arrivals) {
        const first = !seen.has(rid);
        // A retransmission is a new array with the same content.
        const messages = first ? (firstCopy.get(rid) ?? []) : [...(firstCopy.get(rid) ?? [])];
        const nextBefore = inbox.nextExpected;
        const r = inbox.accept(asRid(rid), messages);
        if (Math.abs(rid - hs) > RID_WINDOW) {
          assert.ok(!first, `a first arrival (rid ${rid}) is within the window by construction`);
          assert.equal(r.kind, 'bad_rid');
          continue;
        }
        if (!first) {
          assert.equal(r.kind, 'duplicate', `retransmitted rid ${rid}`);
          continue;
        }
        seen.add(rid);
        hs = Math.max(hs, rid);
        if (r.kind === 'deliver') {
          // Nothing is stepped over for a conforming client: batch k belongs to rid nextBefore + k.
          assert.equal(inbox.nextExpected - nextBefore, r.batches.length);
          r.batches.forEach((batch, k) => {
            // The rid's own batch is the very array; a buffered one comes back parsed from its text.
            assert.deepEqual(batch, firstCopy.get(nextBefore + k));
            // (A poll's empty batch is the inbox's one shared empty batch.)
            if (k === 0 && nextBefore === rid && batch.length > 0) assert.equal(batch, firstCopy.get(rid), 'in order: the first copy itself');
            delivered.push(nextBefore + k);
          });
        } else {
          assert.equal(r.kind, 'buffered');
          assert.equal(inbox.nextExpected, nextBefore);
        }
      }
      assert.deepEqual(delivered, rids, 'every rid exactly once, in rid order');
      assert.equal(inbox.bufferedCount, 0);
      assert.equal(inbox.nextExpected, n + 1);
      assert.equal(inbox.highestSeen, n);
    }),
    { numRuns: 400 },
  );
  t.pass('every scenario delivered 1..n exactly once, in order');
  t.end();
});

void t.test('messages still as text are buffered as a copy of their bytes and built only when delivered', (t) => {
  let built = 0;
  class Watched extends JsonText {
    override parse(): unknown {
      built++;
      return super.parse();
    }
  }
  // A view into a longer body, as the body reader's slices are: the copy must not keep the body.
  const body = `{"messages":["é",[1]],"junk":"${'x'.repeat(1000)}"}`;
  const text = new Watched(body.slice(12, 21), 2);
  const inbox = new Inbox();
  t.equal(inbox.accept(asRid(2), text).kind, 'buffered');
  t.equal(inbox.accept(asRid(2), text).kind, 'duplicate');
  t.equal(built, 0, 'neither buffering nor a duplicate builds them');
  t.equal(inbox.bufferedBytes, Buffer.byteLength('["é",[1]]') + BATCH_OVERHEAD_BYTES, 'counted at their own UTF-8 bytes, not the body\'s');
  const r = inbox.accept(asRid(1), new Watched('["a"]', 1));
  t.equal(built, 1, 'rid 1, delivered at once: built once');
  t.strictSame(r.kind === 'deliver' ? r.batches : undefined, [['a'], ['é', [1]]], 'rid 2 parsed from its bytes, in order');
  t.equal(encodeBatch(text).data.buffer.byteLength, Buffer.byteLength('["é",[1]]'), 'a buffer of their own, not a slab of a pool');
  t.end();
});
