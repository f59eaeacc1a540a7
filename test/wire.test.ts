import t from 'tap';
import { assertSendable, decodeFrame, messagesOf, encodeErrorReply, encodeRequestReply, encodeSetupReply, MAX_SID_LENGTH, textBytes } from '../lib/comet/wire.js';
import { asRid, asSeq, asSid } from '../lib/comet/ids.js';
import { CometError, HTTP_STATUS, isCometError, type WireErrorCode } from '../lib/comet/errors.js';

const SID = 'AbCdEfGhIjKlMnOpQrStUv';

void t.test('valid frames decode to typed frames', (t) => {
  const cases: { name: string; body: unknown; frame: unknown }[] = [
    { name: 'setup', body: { type: 'setup' }, frame: { type: 'setup' } },
    { name: 'setup ignores unknown fields', body: { type: 'setup', v: 2 }, frame: { type: 'setup' } },
    {
      name: 'minimal request',
      body: { sid: SID, rid: 1 },
      frame: { type: 'request', sid: SID, rid: 1, ack: undefined, messages: [] },
    },
    {
      name: 'full request',
      body: { sid: SID, rid: 7, ack: 0, messages: [1, 'two', { three: 3 }, null] },
      frame: { type: 'request', sid: SID, rid: 7, ack: 0, messages: [1, 'two', { three: 3 }, null] },
    },
    {
      name: 'largest safe rid and ack',
      body: { sid: SID, rid: Number.MAX_SAFE_INTEGER, ack: Number.MAX_SAFE_INTEGER },
      frame: { type: 'request', sid: SID, rid: Number.MAX_SAFE_INTEGER, ack: Number.MAX_SAFE_INTEGER, messages: [] },
    },
    {
      name: 'sid of exactly the maximum length',
      body: { sid: 'x'.repeat(MAX_SID_LENGTH), rid: 1 },
      frame: { type: 'request', sid: 'x'.repeat(MAX_SID_LENGTH), rid: 1, ack: undefined, messages: [] },
    },
    {
      name: 'terminate',
      body: { type: 'terminate', sid: SID, rid: 3 },
      frame: { type: 'terminate', sid: SID, rid: 3, ack: undefined },
    },
    {
      name: 'terminate with ack',
      body: { type: 'terminate', sid: SID, rid: 3, ack: 5 },
      frame: { type: 'terminate', sid: SID, rid: 3, ack: 5 },
    },
  ];
  for (const c of cases) {
    t.strictSame(decodeFrame(c.body), { ok: true, frame: c.frame }, c.name);
  }
  t.end();
});

void t.test('wrong shapes are bad_request and the message names the field', (t) => {
  const cases: { name: string; body: unknown; mentions: RegExp }[] = [
    { name: 'array body', body: [], mentions: /body must be a JSON object, got an array/ },
    { name: 'null body', body: null, mentions: /body.*got null/ },
    { name: 'number body', body: 42, mentions: /body.*got 42/ },
    { name: 'string body', body: 'setup', mentions: /body.*got a string/ },
    { name: 'boolean body', body: true, mentions: /body.*got a boolean/ },
    { name: 'object with a foreign prototype', body: new Date(0), mentions: /body must be a JSON object/ },
    { name: 'unknown type', body: { type: 'poll', sid: SID, rid: 1 }, mentions: /type must be "setup" or "terminate"/ },
    { name: 'type "request" is not a type', body: { type: 'request', sid: SID, rid: 1 }, mentions: /omit it for a request/ },
    { name: 'type null', body: { type: null }, mentions: /type must be a string.*got null/ },
    { name: 'type number', body: { type: 1 }, mentions: /type must be a string.*got 1/ },
    { name: 'sid missing', body: { rid: 1 }, mentions: /sid is missing/ },
    { name: 'sid number', body: { sid: 5, rid: 1 }, mentions: /sid must be a string, got 5/ },
    { name: 'sid null', body: { sid: null, rid: 1 }, mentions: /sid must be a string, got null/ },
    { name: 'sid object', body: { sid: {}, rid: 1 }, mentions: /sid must be a string, got an object/ },
    { name: 'sid empty', body: { sid: '', rid: 1 }, mentions: /sid must not be empty/ },
    { name: 'sid too long', body: { sid: 'x'.repeat(MAX_SID_LENGTH + 1), rid: 1 }, mentions: /sid must be at most 128/ },
    { name: 'rid missing', body: { sid: SID }, mentions: /rid is missing/ },
    { name: 'rid 0', body: { sid: SID, rid: 0 }, mentions: /rid must be a positive safe integer.*got 0/ },
    { name: 'rid -1', body: { sid: SID, rid: -1 }, mentions: /rid .*got -1/ },
    { name: 'rid 1.5', body: { sid: SID, rid: 1.5 }, mentions: /rid .*got 1\.5/ },
    { name: 'rid "1"', body: { sid: SID, rid: '1' }, mentions: /rid .*got a string/ },
    { name: 'rid 2**53', body: { sid: SID, rid: 2 ** 53 }, mentions: /rid .*got 9007199254740992/ },
    { name: 'rid null', body: { sid: SID, rid: null }, mentions: /rid .*got null/ },
    { name: 'rid array', body: { sid: SID, rid: [1] }, mentions: /rid .*got an array/ },
    { name: 'ack -1', body: { sid: SID, rid: 1, ack: -1 }, mentions: /ack must be a non-negative safe integer.*got -1/ },
    { name: 'ack 0.5', body: { sid: SID, rid: 1, ack: 0.5 }, mentions: /ack .*got 0\.5/ },
    { name: 'ack "3"', body: { sid: SID, rid: 1, ack: '3' }, mentions: /ack .*got a string/ },
    { name: 'ack null', body: { sid: SID, rid: 1, ack: null }, mentions: /ack .*got null/ },
    { name: 'ack 2**53', body: { sid: SID, rid: 1, ack: 2 ** 53 }, mentions: /ack .*got 9007199254740992/ },
    { name: 'messages object', body: { sid: SID, rid: 1, messages: { 0: 'a' } }, mentions: /messages must be an array, got an object/ },
    { name: 'messages null', body: { sid: SID, rid: 1, messages: null }, mentions: /messages must be an array, got null/ },
    { name: 'messages string', body: { sid: SID, rid: 1, messages: 'hi' }, mentions: /messages must be an array, got a string/ },
    { name: 'terminate without sid', body: { type: 'terminate', rid: 1 }, mentions: /sid is missing/ },
    { name: 'terminate without rid', body: { type: 'terminate', sid: SID }, mentions: /rid is missing/ },
    { name: 'terminate with bad ack', body: { type: 'terminate', sid: SID, rid: 1, ack: -2 }, mentions: /ack .*got -2/ },
    { name: 'terminate with messages', body: { type: 'terminate', sid: SID, rid: 1, messages: ['x'] }, mentions: /messages are only allowed in a request/ },
    { name: 'setup with messages', body: { type: 'setup', messages: [] }, mentions: /messages are only allowed in a request/ },
  ];
  for (const c of cases) {
    const r = decodeFrame(c.body);
    t.equal(r.ok, false, `${c.name}: rejected`);
    if (!r.ok) {
      t.equal(r.code, 'bad_request', `${c.name}: code`);
      t.match(r.message, c.mentions, `${c.name}: message`);
    }
  }
  t.end();
});

void t.test('messages never echo huge input', (t) => {
  const huge = 'A'.repeat(100_000);
  for (const body of [{ sid: huge, rid: 1 }, { sid: SID, rid: huge }, { type: huge }, { sid: SID, rid: 1, ack: huge }, huge]) {
    const r = decodeFrame(body);
    t.equal(r.ok, false);
    if (!r.ok) {
      t.ok(r.message.length < 200, 'message stays short');
      t.notMatch(r.message, /AAAA/, 'input not echoed');
    }
  }
  t.end();
});

void t.test('__proto__ keys stay data and never reach a prototype', (t) => {
  const cases: { name: string; text: string; ok: boolean; mentions?: RegExp }[] = [
    // If `type` were read through the prototype chain this would become a setup.
    { name: 'type hidden in __proto__', text: '{"__proto__": {"type": "setup"}}', ok: false, mentions: /sid is missing/ },
    { name: 'sid and rid hidden in __proto__', text: '{"__proto__": {"sid": "abc", "rid": 1}}', ok: false, mentions: /sid is missing/ },
    { name: 'messages hidden in __proto__', text: `{"sid": "${SID}", "rid": 1, "__proto__": {"messages": 5}}`, ok: true },
  ];
  for (const c of cases) {
    const r = decodeFrame(JSON.parse(c.text));
    t.equal(r.ok, c.ok, c.name);
    if (!r.ok && c.mentions) t.match(r.message, c.mentions, c.name);
    if (r.ok && r.frame.type === 'request') t.strictSame(r.frame.messages, [], `${c.name}: default messages`);
  }

  const r = decodeFrame(JSON.parse(`{"sid": "${SID}", "rid": 1, "messages": [{"__proto__": {"polluted": true}}]}`));
  t.ok(r.ok);
  if (r.ok && r.frame.type === 'request') {
    const m = messagesOf(r.frame.messages)[0] as Record<string, unknown>;
    t.ok(Object.hasOwn(m, '__proto__'), 'message keeps its own __proto__ key untouched');
    t.equal(Object.getPrototypeOf(m), Object.prototype, 'message prototype unchanged');
  }
  t.equal(({} as Record<string, unknown>)['polluted'], undefined, 'Object.prototype not polluted');
  t.end();
});

void t.test('fields inherited from a prototype are not fields', (t) => {
  // A null-prototype object is still a plain object; one whose prototype carries the fields is not read through.
  const bare = Object.create(null) as Record<string, unknown>;
  bare['sid'] = SID;
  bare['rid'] = 2;
  t.match(decodeFrame(bare), { ok: true, frame: { type: 'request', rid: 2 } }, 'null-prototype object accepted');
  const proto = { sid: SID, rid: 1 };
  const child = Object.create(proto) as object;
  t.match(decodeFrame(child), { ok: false, code: 'bad_request' }, 'inherited fields rejected');
  t.end();
});

void t.test('a polluted Object.prototype does not supply fields', (t) => {
  const proto = Object.prototype as Record<string, unknown>;
  const polluted = { sid: SID, rid: 1, ack: 'junk', messages: 'junk', type: 'setup' };
  for (const key of Object.keys(polluted)) proto[key] = polluted[key as keyof typeof polluted];
  try {
    t.match(decodeFrame({}), { ok: false, message: /sid is missing/ }, 'no sid, no type from the prototype');
    t.match(decodeFrame({ sid: SID }), { ok: false, message: /rid is missing/ }, 'no rid from the prototype');
    t.match(
      decodeFrame({ sid: SID, rid: 2 }),
      { ok: true, frame: { type: 'request', ack: undefined, messages: [] } },
      'no ack or messages from the prototype',
    );
  } finally {
    for (const key of Object.keys(polluted)) delete proto[key];
  }
  t.end();
});

void t.test('messages pass through untouched (same references)', (t) => {
  const messages = [{ a: 1 }, [2], 'three'];
  const r = decodeFrame({ sid: SID, rid: 1, messages });
  t.ok(r.ok);
  if (r.ok && r.frame.type === 'request') t.equal(r.frame.messages, messages);
  t.end();
});

void t.test('encoders produce the documented JSON shapes', (t) => {
  t.strictSame(JSON.parse(encodeSetupReply({ sid: asSid(SID), wait: 60000, inactivity: 45000 })), {
    sid: SID,
    wait: 60000,
    inactivity: 45000,
  });
  // Packets are spliced in as the texts they were encoded to when pushed: the same bytes as
  // stringifying the whole reply.
  const packets = [{ seq: asSeq(1), data: { hi: [1], s: 'é\u2028"' } }, { seq: asSeq(2), data: null }];
  const encoded = packets.map((p) => ({ seq: p.seq, json: JSON.stringify(p.data), bytes: 0 }));
  t.equal(encodeRequestReply(asRid(3), encoded), JSON.stringify({ rid: 3, packets }));
  t.strictSame(JSON.parse(encodeRequestReply(asRid(3), encoded)), { rid: 3, packets });
  t.equal(encodeRequestReply(asRid(4), []), '{"rid":4,"packets":[]}');
  t.strictSame(JSON.parse(encodeErrorReply({ error: 'bad_rid', message: 'm' })), { error: 'bad_rid', message: 'm' });
  t.end();
});

void t.test('error codes map to their HTTP status; CometError carries both', (t) => {
  const expected: Record<WireErrorCode, number> = {
    bad_json: 400,
    bad_request: 400,
    bad_rid: 400,
    unknown_session: 404,
    not_found: 404,
    method_not_allowed: 405,
    too_large: 413,
    unsupported_media_type: 415,
    rate_limited: 429,
    too_many_sessions: 429,
    overloaded: 503,
    shutting_down: 503,
  };
  t.strictSame({ ...HTTP_STATUS }, expected);
  t.ok(Object.isFrozen(HTTP_STATUS), 'the table cannot be changed at run time');
  for (const code of Object.keys(expected) as WireErrorCode[]) {
    const err = new CometError(code, `because ${code}`);
    t.equal(err.code, code);
    t.equal(err.status, expected[code]);
    t.equal(err.message, `because ${code}`);
    t.equal(err.name, 'CometError');
    t.ok(err instanceof Error);
    t.ok(isCometError(err));
  }
  const cause = new Error('root');
  t.equal(new CometError('overloaded', 'queue full', { cause }).cause, cause, 'cause kept');
  t.ok(isCometError({ code: 'unknown_session', message: 'from another copy of the library' }), 'duck-typed');
  const others: { name: string; value: unknown }[] = [
    { name: 'null', value: null },
    { name: 'undefined', value: undefined },
    { name: 'a code string', value: 'unknown_session' },
    { name: 'a plain Error', value: new Error('x') },
    { name: 'a node error code', value: { code: 'ECONNRESET' } },
    { name: 'a numeric code', value: { code: 5 } },
  ];
  for (const o of others) t.notOk(isCometError(o.value), `not a CometError: ${o.name}`);
  t.end();
});

void t.test('textBytes: what a string costs in memory, never less than its UTF-8 size', (t) => {
  t.equal(textBytes('abc'), 3, 'ASCII: one byte each');
  t.equal(textBytes('é'), 2, 'Latin-1: one byte in V8, two in UTF-8');
  t.equal(textBytes(`${'a'.repeat(100)}€`), 202, 'one character past Latin-1 makes V8 keep every character in two bytes');
  t.equal(textBytes('😀'), 4, 'a surrogate pair: four either way');
  for (const s of ['abc', 'é', '€€€', '😀x', `${'a'.repeat(50)}\u4e2d`]) {
    t.ok(textBytes(s) >= Buffer.byteLength(s), `${JSON.stringify(s)}: at least its UTF-8 bytes`);
  }
  t.end();
});

void t.test('assertSendable refuses a string too long for one response by its length, without encoding it', (t) => {
  const real = JSON.stringify;
  let encoded = 0;
  JSON.stringify = ((...args: Parameters<typeof JSON.stringify>) => {
    encoded++;
    return real(...args);
  }) as typeof JSON.stringify;
  try {
    // Built by concatenation, as 'x'.repeat makes it: encoding it would first copy it flat.
    t.throws(() => assertSendable('x'.repeat(10 * 1024 * 1024), 1024 * 1024), { code: 'ERR_COMET_PACKET_TOO_LARGE' }, '10 MiB in 1 MiB');
    t.equal(encoded, 0, 'never encoded');
    const edge = 1000 - 37 - 64 - 2;
    t.equal(assertSendable('x'.repeat(edge), 1000).bytes, edge + 2 + 64, 'a string that just fits is taken');
    t.throws(() => assertSendable('x'.repeat(edge + 1), 1000), { code: 'ERR_COMET_PACKET_TOO_LARGE' }, 'one more character is not');
    t.throws(() => assertSendable('é'.repeat(edge / 2 + 1), 1000), { code: 'ERR_COMET_PACKET_TOO_LARGE' }, 'short enough by length, too long in bytes: refused once encoded');
  } finally {
    JSON.stringify = real;
  }
  t.end();
});
