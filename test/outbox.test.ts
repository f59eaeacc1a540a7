import t from 'tap';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { asSeq } from '../lib/comet/ids.js';
import { DEFAULT_MAX_QUEUE, Outbox, type EncodedPacket } from '../lib/comet/outbox.js';
import { PACKET_OVERHEAD_BYTES, textBytes, type EncodedData } from '../lib/comet/wire.js';

/** Data encoded as the FSM's callers encode it when it is pushed. */
const enc = (data: unknown): EncodedData => {
  const json = JSON.stringify(data);
  return { json, bytes: textBytes(json) + PACKET_OVERHEAD_BYTES };
};

/** Plain `{seq, data}` copies, decoded from each packet's text, as a client reads them. */
const plain = (packets: readonly EncodedPacket[]): { seq: number; data: unknown }[] =>
  packets.map((p) => ({ seq: p.seq, data: JSON.parse(p.json) as unknown }));

/** An outbox with `n` packets 'p1'..'pn' pushed. */
function filled(n: number, maxQueue?: number): Outbox {
  const outbox = new Outbox(maxQueue === undefined ? {} : { maxQueue });
  for (let i = 1; i <= n; i++) outbox.push(enc(`p${i}`));
  return outbox;
}

void t.test('a fresh outbox is empty', (t) => {
  const outbox = new Outbox();
  t.equal(outbox.maxQueue, DEFAULT_MAX_QUEUE);
  t.equal(DEFAULT_MAX_QUEUE, 1000);
  t.same(outbox.pending(), []);
  t.equal(outbox.hasPending, false);
  t.equal(outbox.size, 0);
  t.equal(outbox.isFull, false);
  t.equal(outbox.lastSeq, 0);
  t.equal(outbox.lastAcked, 0);
  t.end();
});

void t.test('seqs start at 1 and go up by 1 per packet', (t) => {
  const outbox = new Outbox();
  t.same(outbox.push(enc('a')), { ok: true, seq: 1 });
  t.same(outbox.push(enc({ n: 2 })), { ok: true, seq: 2 });
  t.same(outbox.push(enc(null)), { ok: true, seq: 3 });
  t.equal(outbox.lastSeq, 3);
  t.same(plain(outbox.pending()), [
    { seq: 1, data: 'a' },
    { seq: 2, data: { n: 2 } },
    { seq: 3, data: null },
  ]);
  t.equal(outbox.hasPending, true);
  t.equal(outbox.size, 3);
  t.end();
});

// Each row: packets pushed, acks applied in order, then the seqs expected pending and lastAcked.
const ackTable: { name: string; pushed: number; acks: number[]; pending: number[]; lastAcked: number }[] = [
  { name: 'ack 0 forgets nothing', pushed: 3, acks: [0], pending: [1, 2, 3], lastAcked: 0 },
  { name: 'ack forgets seq <= upTo', pushed: 5, acks: [2], pending: [3, 4, 5], lastAcked: 2 },
  { name: 'ack of the last seq forgets all', pushed: 3, acks: [3], pending: [], lastAcked: 3 },
  { name: 'ack above lastSeq clamps to it', pushed: 3, acks: [99], pending: [], lastAcked: 3 },
  { name: 'a lower ack after a higher one is ignored', pushed: 5, acks: [4, 1], pending: [5], lastAcked: 4 },
  { name: 'a repeated ack is a no-op', pushed: 5, acks: [2, 2], pending: [3, 4, 5], lastAcked: 2 },
  { name: 'acks move forward step by step', pushed: 5, acks: [1, 3, 4], pending: [5], lastAcked: 4 },
  { name: 'ack on an empty outbox', pushed: 0, acks: [5], pending: [], lastAcked: 0 },
];

for (const row of ackTable) {
  void t.test(row.name, (t) => {
    const outbox = filled(row.pushed);
    for (const a of row.acks) outbox.ack(asSeq(a));
    t.same(
      plain(outbox.pending()),
      row.pending.map((seq) => ({ seq, data: `p${seq}` })),
    );
    t.equal(outbox.size, row.pending.length);
    t.equal(outbox.hasPending, row.pending.length > 0);
    t.equal(outbox.lastAcked, row.lastAcked);
    t.equal(outbox.lastSeq, row.pushed);
    t.end();
  });
}

void t.test('a clamped ack does not forget packets pushed after it', (t) => {
  const outbox = filled(3);
  outbox.ack(asSeq(10));
  t.same(outbox.push(enc('p4')), { ok: true, seq: 4 });
  t.same(plain(outbox.pending()), [{ seq: 4, data: 'p4' }]);
  outbox.ack(asSeq(3));
  t.same(plain(outbox.pending()), [{ seq: 4, data: 'p4' }], 'an ack equal to the clamped one changes nothing');
  outbox.ack(asSeq(4));
  t.same(outbox.pending(), []);
  t.end();
});

void t.test('seqs are never reused after everything is acked', (t) => {
  const outbox = filled(3);
  outbox.ack(asSeq(3));
  t.same(outbox.push(enc('again')), { ok: true, seq: 4 });
  t.same(plain(outbox.pending()), [{ seq: 4, data: 'again' }]);
  t.end();
});

void t.test('unacked packets are resent with the same seq and the same data', (t) => {
  const outbox = new Outbox();
  const obj = { text: 'hello' };
  outbox.push(enc(obj));
  outbox.push(enc('x'));
  obj.text = 'changed after the push';
  const first = outbox.pending();
  outbox.ack(asSeq(0)); // a response died in flight: the client acks nothing new
  const second = outbox.pending();
  t.equal(second.length, 2);
  t.equal(second[0]?.seq, first[0]?.seq);
  t.same(plain(second), [{ seq: 1, data: { text: 'hello' } }, { seq: 2, data: 'x' }], 'the text encoded at the push, byte for byte');
  t.ok(Object.isFrozen(second[0]), 'a packet cannot be rewritten under its seq');
  t.end();
});

void t.test('pending() is a snapshot', (t) => {
  const outbox = filled(2);
  const snap = outbox.pending();
  outbox.push(enc('p3'));
  outbox.ack(asSeq(1));
  t.same(plain(snap), [
    { seq: 1, data: 'p1' },
    { seq: 2, data: 'p2' },
  ]);
  (snap as EncodedPacket[]).length = 0; // a careless caller
  t.same(plain(outbox.pending()), [
    { seq: 2, data: 'p2' },
    { seq: 3, data: 'p3' },
  ]);
  t.end();
});

void t.test('full exactly at maxQueue, refused without dropping, no seq consumed', (t) => {
  const outbox = filled(2, 3);
  t.equal(outbox.isFull, false);
  t.same(outbox.push(enc('p3')), { ok: true, seq: 3 });
  t.equal(outbox.isFull, true);
  t.same(outbox.push(enc('lost?')), { ok: false, code: 'overloaded' });
  t.same(outbox.push(enc('lost?')), { ok: false, code: 'overloaded' });
  t.equal(outbox.lastSeq, 3);
  t.same(
    plain(outbox.pending()).map((p) => p.data),
    ['p1', 'p2', 'p3'],
    'the queued packets are intact',
  );
  outbox.ack(asSeq(1));
  t.equal(outbox.isFull, false);
  t.same(outbox.push(enc('p4')), { ok: true, seq: 4 }, 'the refused pushes used no seq');
  t.equal(outbox.isFull, true);
  t.end();
});

void t.test('the default maxQueue is DEFAULT_MAX_QUEUE', (t) => {
  const outbox = filled(DEFAULT_MAX_QUEUE);
  t.equal(outbox.isFull, true);
  t.same(outbox.push(enc('one too many')), { ok: false, code: 'overloaded' });
  t.equal(outbox.size, DEFAULT_MAX_QUEUE);
  t.end();
});

void t.test('maxQueue 1', (t) => {
  const outbox = new Outbox({ maxQueue: 1 });
  t.same(outbox.push(enc('a')), { ok: true, seq: 1 });
  t.same(outbox.push(enc('b')), { ok: false, code: 'overloaded' });
  outbox.ack(asSeq(1));
  t.same(outbox.push(enc('b')), { ok: true, seq: 2 });
  t.end();
});

for (const maxQueue of [0, -1, 1.5, Number.NaN, Infinity]) {
  void t.test(`maxQueue ${maxQueue} is rejected`, (t) => {
    t.throws(() => new Outbox({ maxQueue }), { name: 'CometError', code: 'ERR_COMET_INVALID_MAX_QUEUE' });
    t.end();
  });
}

for (const seq of [-1, 1.5, Number.NaN]) {
  void t.test(`ack(${seq}) is rejected and changes nothing`, (t) => {
    const outbox = filled(2);
    t.throws(() => outbox.ack(asSeq(seq)), { name: 'CometError', code: 'ERR_COMET_INVALID_SEQ' });
    t.equal(outbox.size, 2);
    t.end();
  });
}

type Op = { readonly op: 'push'; readonly data: number } | { readonly op: 'ack'; readonly delta: number };

void t.test('property: matches a reference array under random push/ack', (t) => {
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ op: fc.constant('push' as const), data: fc.integer() }),
    // delta is relative to the model's lastSeq, so acks land below, on and above it.
    fc.record({ op: fc.constant('ack' as const), delta: fc.integer({ min: -8, max: 4 }) }),
  );
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 8 }), fc.array(opArb, { maxLength: 80 }), (maxQueue, ops) => {
      const outbox = new Outbox({ maxQueue });
      const model: { seq: number; data: unknown }[] = [];
      const everAssigned = new Map<number, unknown>();
      let lastSeq = 0;
      let acked = 0;
      for (const op of ops) {
        switch (op.op) {
          case 'push': {
            const r = outbox.push(enc(op.data));
            if (model.length === maxQueue) {
              assert.deepEqual(r, { ok: false, code: 'overloaded' });
            } else {
              lastSeq++;
              assert.deepEqual(r, { ok: true, seq: lastSeq });
              assert.ok(!everAssigned.has(lastSeq), 'seq never reused');
              everAssigned.set(lastSeq, op.data);
              model.push({ seq: lastSeq, data: op.data });
            }
            break;
          }
          case 'ack': {
            const upTo = Math.max(0, lastSeq + op.delta);
            outbox.ack(asSeq(upTo));
            acked = Math.max(acked, Math.min(upTo, lastSeq));
            while (model.length > 0 && (model[0]?.seq ?? Infinity) <= acked) model.shift();
            break;
          }
        }
        const pending = outbox.pending();
        assert.deepEqual(plain(pending), model);
        for (let i = 1; i < pending.length; i++) {
          assert.ok((pending[i]?.seq ?? 0) > (pending[i - 1]?.seq ?? 0), 'seqs strictly increasing');
        }
        for (const p of pending) assert.equal(JSON.parse(p.json), everAssigned.get(p.seq), 'same seq, same data');
        assert.equal(outbox.size, model.length);
        assert.equal(outbox.bytes, model.reduce((sum, p) => sum + enc(p.data).bytes, 0), 'bytes: the sum over unacked packets');
        assert.equal(outbox.hasPending, model.length > 0);
        assert.equal(outbox.isFull, model.length === maxQueue);
        assert.equal(outbox.lastSeq, lastSeq);
        assert.equal(outbox.lastAcked, acked);
      }
    }),
    { numRuns: 400 },
  );
  t.pass('pending() matched the model on every step');
  t.end();
});

void t.test('bytes: what the unacked packets cost, counted on push, forgotten on ack', (t) => {
  const outbox = new Outbox();
  t.equal(outbox.bytes, 0);
  outbox.push(enc('a'.repeat(1000)));
  outbox.push(enc({ n: 2 }));
  t.equal(outbox.bytes, enc('a'.repeat(1000)).bytes + enc({ n: 2 }).bytes);
  t.equal(enc('a'.repeat(1000)).bytes, 1002 + PACKET_OVERHEAD_BYTES, 'its text and the overhead');
  outbox.ack(asSeq(1));
  t.equal(outbox.bytes, enc({ n: 2 }).bytes);
  outbox.ack(asSeq(2));
  t.equal(outbox.bytes, 0);
  t.end();
});

void t.test('pending(maxBytes): the oldest packets that fit, always at least one; the rest stay for the next', (t) => {
  const outbox = new Outbox();
  for (let i = 1; i <= 5; i++) outbox.push(enc('x'.repeat(100 * i)));
  const sizes = plain(outbox.pending()).map((p) => enc(p.data).bytes);
  const [b1 = 0, b2 = 0, b3 = 0] = sizes;
  t.same(outbox.pending(b1 + b2).map((p) => p.seq), [1, 2], 'exactly two fit');
  t.same(outbox.pending(b1 + b2 + b3 - 1).map((p) => p.seq), [1, 2], 'one byte short of the third');
  t.same(outbox.pending(1).map((p) => p.seq), [1], 'the oldest one even when it alone is over');
  t.same(outbox.pending(Infinity).map((p) => p.seq), [1, 2, 3, 4, 5]);
  outbox.ack(asSeq(2));
  t.same(outbox.pending(b3).map((p) => p.seq), [3], 'after an ack the window starts at the oldest unacked');
  t.end();
});

void t.test('pushPastBound: what is pushed for an accepted message is queued even when full', (t) => {
  const outbox = new Outbox({ maxQueue: 2 });
  outbox.push(enc('a'));
  outbox.push(enc('b'));
  t.same(outbox.push(enc('refused')), { ok: false, code: 'overloaded' });
  t.equal(outbox.pushPastBound(enc('c')), 3, 'the next seq, no gap');
  t.equal(outbox.size, 3);
  t.equal(outbox.isFull, true);
  t.same(outbox.push(enc('still refused')), { ok: false, code: 'overloaded' });
  outbox.ack(asSeq(2));
  t.equal(outbox.isFull, false, 'under the bound again once acked');
  t.same(plain(outbox.pending()), [{ seq: 3, data: 'c' }]);
  t.end();
});

void t.test('peekPending: what pending gives, without the copy when every packet fits', (t) => {
  const outbox = filled(3);
  const all = outbox.peekPending();
  t.same(plain(all), plain(outbox.pending()), 'the same packets as pending');
  t.equal(outbox.peekPending(), all, 'all fit: the queue itself, no copy per call');
  const oldest = outbox.peekPending(all[0]!.bytes);
  t.same(plain(oldest), [{ seq: 1, data: 'p1' }], 'a byte limit: only the oldest that fit');
  t.not(oldest, all, 'a copy of the part that fits');
  outbox.ack(asSeq(3));
  t.same(outbox.peekPending(), [], 'all acked: none');
  t.end();
});
