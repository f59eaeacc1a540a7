// Hostile bodies over real HTTP against createCometServer on 127.0.0.1:0: malformed shapes, deep
// and huge JSON, __proto__/constructor keys, invalid UTF-8, wrong media types. Each answer has its
// exact status and code and leaks nothing; after each, the same server still serves a fresh
// session. (The plain one-per-code cases live in server_errors.test.ts; these are the nastier
// inputs around them.)
import t from 'tap';
import type { Test } from 'tap';
import { MANY_CLIENTS_ON_LOOPBACK, fields, packetsOf, post, setup } from './fixtures/http.js';
import { assertStillServes, expectError, startProbedServer } from './fixtures/raw_socket.js';

/** One hostile body: raw text or bytes, sent as application/json. */
interface Row {
  readonly name: string;
  readonly body: string | Uint8Array;
  readonly status: number;
  /** The error code, or undefined for a body that is (surprisingly, but correctly) accepted. */
  readonly code: string | undefined;
}

const S = '$SID';
const bad = (name: string, body: string | Uint8Array, code: string, status = 400): Row => ({ name, body, status, code });
const ok = (name: string, body: string | Uint8Array): Row => ({ name, body, status: 200, code: undefined });
const bytes = (...parts: (string | number[])[]): Uint8Array =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === 'string' ? [...Buffer.from(p)] : p)));

/** Malformed shapes beyond server_errors' one-per-code table. `$SID` is a live session's sid. */
const SHAPES: readonly Row[] = [
  // Not one JSON value
  bad('two JSON values', '{"type":"setup"}{"type":"setup"}', 'bad_json'),
  bad('trailing garbage', '{"type":"setup"} x', 'bad_json'),
  bad('trailing comma', '{"type":"setup",}', 'bad_json'),
  bad('single quotes', "{'type':'setup'}", 'bad_json'),
  bad('unquoted keys', '{type:"setup"}', 'bad_json'),
  bad('a comment', '{"type":"setup"} // hi', 'bad_json'),
  bad('NaN literal', '{"type":"setup","n":NaN}', 'bad_json'),
  bad('Infinity literal', 'Infinity', 'bad_json'),
  bad('undefined literal', 'undefined', 'bad_json'),
  bad('raw control character in a string', '{"type":"setup","x":"a\u0001b"}', 'bad_json'),
  bad('broken \\u escape', '{"type":"set\\u12"}', 'bad_json'),
  bad('whitespace only', ' \n\t\r ', 'bad_json'),
  bad('unbalanced bracket', '{"sid":"$SID","rid":1,"messages":[', 'bad_json'),
  // JSON, wrong shape
  bad('JSON text inside a JSON string', JSON.stringify('{"type":"setup"}'), 'bad_request'),
  bad('empty object', '{}', 'bad_request'),
  bad('type null', '{"type":null}', 'bad_request'),
  bad('type "request" spelled out', '{"type":"request","sid":"$SID","rid":1}', 'bad_request'),
  bad('type in capitals', '{"type":"SETUP"}', 'bad_request'),
  bad('type an array', '{"type":["setup"]}', 'bad_request'),
  bad('setup with messages', '{"type":"setup","messages":[]}', 'bad_request'),
  bad('terminate with messages', '{"type":"terminate","sid":"$SID","rid":1,"messages":[]}', 'bad_request'),
  bad('duplicate key: the last type wins (terminate without sid)', '{"type":"setup","type":"terminate"}', 'bad_request'),
  bad('duplicate key: the last sid wins (a number)', '{"sid":"$SID","rid":1,"sid":5}', 'bad_request'),
  bad('sid an array', '{"sid":["$SID"],"rid":1}', 'bad_request'),
  bad('sid an object with toString', '{"sid":{"toString":"$SID"},"rid":1}', 'bad_request'),
  bad('sid 129 characters', `{"sid":"${'a'.repeat(129)}","rid":1}`, 'bad_request'),
  bad('sid 60,000 characters', `{"sid":"${'a'.repeat(60_000)}","rid":1}`, 'bad_request'),
  bad('rid true', '{"sid":"$SID","rid":true}', 'bad_request'),
  bad('rid [1]', '{"sid":"$SID","rid":[1]}', 'bad_request'),
  bad('rid {}', '{"sid":"$SID","rid":{}}', 'bad_request'),
  bad('rid 1e400 (parses to Infinity)', '{"sid":"$SID","rid":1e400}', 'bad_request'),
  bad('rid 1e-400 (parses to 0)', '{"sid":"$SID","rid":1e-400}', 'bad_request'),
  bad('rid -0', '{"sid":"$SID","rid":-0}', 'bad_request'),
  bad('rid 2^53', '{"sid":"$SID","rid":9007199254740992}', 'bad_request'),
  bad('ack 2^53', '{"sid":"$SID","rid":1,"ack":9007199254740992}', 'bad_request'),
  bad('ack true', '{"sid":"$SID","rid":1,"ack":true}', 'bad_request'),
  bad('ack [0]', '{"sid":"$SID","rid":1,"ack":[0]}', 'bad_request'),
  bad('messages array-like object', '{"sid":"$SID","rid":1,"messages":{"length":1,"0":"x"}}', 'bad_request'),
  bad('messages a number', '{"sid":"$SID","rid":1,"messages":1}', 'bad_request'),
  // Well-formed, out of the rid window: refused by the session, not the decoder
  bad('rid 1e3 (an integer, 999 ahead)', '{"sid":"$SID","rid":1e3}', 'bad_rid'),
  bad('rid 2^53-1', '{"sid":"$SID","rid":9007199254740991}', 'bad_rid'),
  // Odd but valid: accepted, as the contract says
  ok('leading byte order mark', bytes([0xef, 0xbb, 0xbf], '{"type":"setup"}')),
  ok('whitespace around the object', '\r\n\t {"type":"setup"} \n'),
  ok('unknown fields, nested', '{"type":"setup","future":{"a":[1,{"b":null}]},"v":2}'),
  ok('6,000 unknown keys', `{"type":"setup",${Array.from({ length: 6000 }, (_, i) => `"k${i}":0`).join(',')}}`),
];

void t.test('malformed shapes: each has its exact status and code, leaks nothing, and the server serves on', async (t) => {
  const { url, comet, seen } = await startProbedServer(t, MANY_CLIENTS_ON_LOOPBACK);
  const sid = await setup(url);
  for (const row of SHAPES) {
    const body = typeof row.body === 'string' ? row.body.replaceAll(S, sid) : row.body;
    const r = await post(url, body, { raw: true });
    if (row.code === undefined) {
      t.equal(r.status, 200, `${row.name}: accepted`);
      t.type(fields(r)['sid'], 'string', `${row.name}: a setup reply`);
    } else {
      expectError(t, r, row.status, row.code, row.name);
      t.notMatch(r.text, sid, `${row.name}: the sid is not echoed`);
    }
    await assertStillServes(t, url, row.name);
  }
  t.same(seen.messages.filter((m) => m.sid === sid), [], 'nothing reached the live session');
  await comet.handlePacket(sid, 'p1');
  const r = await post(url, { sid, rid: 1, ack: 0 });
  t.same(packetsOf(r), [{ seq: 1, data: 'p1' }], 'the live session took none of it: rid 1 is still its first request');
});

/** `[[[...]]]` `depth` levels deep. */
const nestedArrays = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);
/** `{"a":{"a":...{}}}` `depth` levels deep. */
const nestedObjects = (depth: number): string => '{"a":'.repeat(depth - 1) + '{}' + '}'.repeat(depth - 1);

void t.test('deep JSON: refused as bad_json within the size limit, never reaching the application', async (t) => {
  const { url, seen } = await startProbedServer(t, { maxBodyBytes: 1024 * 1024 });
  const sid = await setup(url);
  const cases: [string, string][] = [
    ['100,000 nested arrays in a message', `{"sid":"${sid}","rid":1,"messages":[${nestedArrays(100_000)}]}`],
    ['100,000 nested objects in a message', `{"sid":"${sid}","rid":1,"messages":[${nestedObjects(100_000)}]}`],
    ['100,000 nested arrays as the body', nestedArrays(100_000)],
    ['100,000 nested objects in an unknown field of a setup', `{"type":"setup","x":${nestedObjects(100_000)}}`],
  ];
  for (const [what, body] of cases) {
    t.ok(Buffer.byteLength(body) <= 1024 * 1024, `${what}: within the size limit`);
    expectError(t, await post(url, body, { raw: true }), 400, 'bad_json', what);
    await assertStillServes(t, url, what);
  }
  t.same(seen.messages.filter((m) => m.sid === sid), [], 'no deep message reached onMessage');
  t.equal(seen.logs.filter((l) => l.level === 'error').length, 0, 'and nothing failed inside');
});

void t.test('deep JSON at the default limit: 32,000 levels in 64 KiB are refused', async (t) => {
  const { url } = await startProbedServer(t);
  const sid = await setup(url);
  const prefix = `{"sid":"${sid}","rid":1,"messages":[`;
  const depth = Math.floor((65_536 - prefix.length - 2) / 2);
  const body = `${prefix}${nestedArrays(depth)}]}`;
  t.ok(Buffer.byteLength(body) <= 65_536 && depth > 32_000, `${depth} levels in ${Buffer.byteLength(body)} bytes`);
  expectError(t, await post(url, body, { raw: true }), 400, 'bad_json', 'deep message');
  await assertStillServes(t, url, 'deep message');
});

void t.test('the depth edge over HTTP: a message 62 deep goes in and out intact, 63 deep is bad_json', async (t) => {
  const { url, comet, seen } = await startProbedServer(t);
  const sid = await setup(url);
  // The body object is level 1 and `messages` level 2: a message may nest 62 levels.
  await comet.handlePacket(sid, JSON.parse(nestedArrays(62)));
  const r62 = await post(url, `{"sid":"${sid}","rid":1,"messages":[${nestedArrays(62)}]}`, { raw: true });
  t.equal(JSON.stringify(packetsOf(r62)[0]?.data), nestedArrays(62), 'a packet 62 deep goes out intact');
  t.equal(JSON.stringify(seen.messages.find((m) => m.sid === sid)?.data), nestedArrays(62), 'a message 62 deep is delivered as sent');
  expectError(t, await post(url, `{"sid":"${sid}","rid":2,"messages":[${nestedArrays(63)}]}`, { raw: true }), 400, 'bad_json', '63 levels');
  // Brackets inside strings are text, not nesting, escaped quotes included.
  const text = `\\"${'['.repeat(30_000)}`;
  const r = await post(url, `{"sid":"${sid}","rid":2,"ack":0,"messages":["${text}"]}`, { raw: true });
  t.equal(r.status, 200, '30,000 brackets inside a string are not nesting');
  t.equal(seen.messages.filter((m) => m.sid === sid).length, 2, 'and that message was delivered');
  await assertStillServes(t, url, 'the depth edge');
});

void t.test('huge JSON: over the limit is 413 too_large; up to it, every message arrives', async (t) => {
  const { url, comet, seen } = await startProbedServer(t);
  const sid = await setup(url);
  const huge = JSON.stringify({ sid, rid: 1, messages: Array.from({ length: 20_000 }, (_, i) => `message ${i}`) });
  t.ok(huge.length > 200_000, `${huge.length} bytes of valid JSON`);
  const r = await post(url, huge, { raw: true });
  expectError(t, r, 413, 'too_large', 'a 300 KB request');
  t.equal(r.headers.get('connection'), 'close', 'the connection is closed, the rest is never read');
  await assertStillServes(t, url, 'a 300 KB request');

  // 64 KiB of the smallest messages there are (over 32,000), all delivered, in order.
  const prefix = `{"sid":"${sid}","rid":1,"messages":[`;
  const count = Math.floor((65_536 - prefix.length - 2 + 1) / 2);
  const full = `${prefix}${Array.from({ length: count }, () => '0').join(',')}]}`;
  t.ok(Buffer.byteLength(full) <= 65_536, `${count} messages in ${Buffer.byteLength(full)} bytes`);
  await comet.handlePacket(sid, 'p1');
  t.same(packetsOf(await post(url, full, { raw: true })), [{ seq: 1, data: 'p1' }], 'accepted');
  const got = seen.messages.filter((m) => m.sid === sid).map((m) => m.data);
  t.equal(got.length, count, 'every message reached onMessage');
  t.ok(got.every((d) => d === 0), 'each as sent');
  await assertStillServes(t, url, '32,000 messages');
});

/** Raw JSON text on purpose: a TS literal `{ __proto__: x }` sets a prototype, while JSON.parse makes an own key. */
const HOSTILE_MESSAGES = [
  '{"__proto__":{"polluted":"via __proto__"}}',
  '{"constructor":{"prototype":{"polluted":"via constructor.prototype"}}}',
  '{"__proto__":null}',
  '{"a":{"__proto__":{"polluted":"nested"}},"prototype":{"polluted":"via prototype"}}',
  '{"__proto__":{"__proto__":{"polluted":"twice"}},"toString":"not a function","hasOwnProperty":1}',
];

function notPolluted(t: Test, what: string): void {
  const probe: Record<string, unknown> = {};
  t.equal(probe['polluted'], undefined, `${what}: ({}).polluted is undefined`);
  t.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'), false, `${what}: Object.prototype untouched`);
  t.equal(typeof probe.toString, 'function', `${what}: toString still a function`);
  t.equal(typeof Object.prototype.hasOwnProperty, 'function', `${what}: hasOwnProperty still a function`);
}

void t.test('__proto__, constructor and prototype keys: no pollution, fields never read through a prototype', async (t) => {
  const { url, comet, seen } = await startProbedServer(t);
  const sid = await setup(url);

  // In the body: an own key named __proto__ is data; the decoder does not look through it.
  expectError(t, await post(url, '{"__proto__":{"type":"setup"}}', { raw: true }), 400, 'bad_request', 'type only under __proto__');
  expectError(t, await post(url, `{"__proto__":{"sid":"${sid}","rid":1}}`, { raw: true }), 400, 'bad_request', 'sid and rid only under __proto__');
  expectError(t, await post(url, `{"constructor":{"prototype":{"sid":"${sid}"}},"rid":1}`, { raw: true }), 400, 'bad_request', 'sid only under constructor.prototype');
  const setupReply = await post(url, '{"type":"setup","__proto__":{"polluted":"x"},"constructor":{"prototype":{"polluted":"x"}}}', { raw: true });
  t.equal(setupReply.status, 200, 'a setup carrying polluters is still a setup');
  notPolluted(t, 'after bodies with polluters');

  // messages and ack under __proto__ are ignored: a plain poll, nothing delivered, nothing acked.
  await comet.handlePacket(sid, 'p1');
  const r = await post(url, `{"sid":"${sid}","rid":1,"__proto__":{"messages":["smuggled"],"ack":1}}`, { raw: true });
  t.same(packetsOf(r), [{ seq: 1, data: 'p1' }], 'answered as a poll');
  t.same(seen.messages.filter((m) => m.sid === sid), [], 'no message came from __proto__');
  const again = await post(url, `{"sid":"${sid}","rid":2,"__proto__":{"ack":1}}`, { raw: true });
  t.same(packetsOf(again), [{ seq: 1, data: 'p1' }], 'an ack under __proto__ acked nothing: seq 1 is sent again');

  // In messages: delivered intact, as data, and sent back intact.
  await comet.handlePacket(sid, 'p2');
  const body = `{"sid":"${sid}","rid":3,"ack":1,"messages":[${HOSTILE_MESSAGES.join(',')}]}`;
  t.same(packetsOf(await post(url, body, { raw: true })), [{ seq: 2, data: 'p2' }], 'a request carrying them is answered');
  const delivered = seen.messages.filter((m) => m.sid === sid).map((m) => m.data);
  t.equal(delivered.length, HOSTILE_MESSAGES.length, 'every message delivered');
  HOSTILE_MESSAGES.forEach((text, i) => {
    const data = delivered[i];
    t.equal(JSON.stringify(data), JSON.stringify(JSON.parse(text)), `message ${i}: intact`);
    t.equal(Object.getPrototypeOf(data), Object.prototype, `message ${i}: a plain object, its prototype not replaced`);
    t.equal((data as Record<string, unknown>)['polluted'], undefined, `message ${i}: polluted is not inherited`);
  });
  t.ok(Object.hasOwn(delivered[0] as object, '__proto__'), '__proto__ is an own key of the message');
  for (const data of delivered) await comet.handlePacket(sid, data);
  const echoed = await post(url, { sid, rid: 4, ack: 2 });
  t.equal(echoed.status, 200);
  HOSTILE_MESSAGES.forEach((text, i) => t.ok(echoed.text.includes(`"data":${text}`), `message ${i}: sent back byte for byte`));
  notPolluted(t, 'after hostile messages went in and out');

  // Prototype names as sids: the session table is a Map, so they are just unknown sids.
  for (const name of ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', '__defineGetter__']) {
    expectError(t, await post(url, { sid: name, rid: 1 }), 404, 'unknown_session', `sid "${name}"`);
  }
  notPolluted(t, 'at the end');
  await assertStillServes(t, url, 'polluters');
  t.equal(seen.logs.filter((l) => l.level === 'error').length, 0, 'nothing failed inside');
});

/** `{"type":"setup","x":"<bad>"}` with invalid bytes where the string goes. */
const inString = (bad: number[]): Uint8Array => bytes('{"type":"setup","x":"', bad, '"}');

void t.test('invalid UTF-8 anywhere is 400 bad_json; valid multi-byte text goes through', async (t) => {
  const { url, comet, seen } = await startProbedServer(t);
  const cases: [string, Uint8Array][] = [
    ['lone continuation byte', inString([0x80])],
    ['overlong NUL (C0 80)', inString([0xc0, 0x80])],
    ['overlong 3-byte slash (E0 80 AF)', inString([0xe0, 0x80, 0xaf])],
    ['encoded surrogate (ED A0 80)', inString([0xed, 0xa0, 0x80])],
    ['CESU-8 surrogate pair', inString([0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80])],
    ['above U+10FFFF (F4 90 80 80)', inString([0xf4, 0x90, 0x80, 0x80])],
    ['5-byte form (F8 88 80 80 80)', inString([0xf8, 0x88, 0x80, 0x80, 0x80])],
    ['bad continuation (C3 28)', inString([0xc3, 0x28])],
    ['Latin-1 e-acute (E9) before ASCII', inString([0xe9, 0x74, 0xe9])],
    ['truncated 3-byte sequence at the end', bytes('{"type":"setup"}', [0xe2, 0x82])],
    ['invalid byte in a key', bytes('{"type":"setup","', [0xff], '":1}')],
    ['UTF-16LE with BOM', Uint8Array.from([0xff, 0xfe, ...Buffer.from('{"type":"setup"}', 'utf16le')])],
    ['UTF-16BE without BOM', Uint8Array.from(Buffer.from('{"type":"setup"}', 'utf16le').swap16())],
  ];
  for (const [what, body] of cases) {
    expectError(t, await post(url, body, { raw: true }), 400, 'bad_json', what);
    await assertStillServes(t, url, what);
  }
  // Valid text, including astral characters and an escaped lone surrogate, arrives as sent.
  const sid = await setup(url);
  const text = 'h\u00e9llo \u4e16\u754c \u{1f600}';
  await comet.handlePacket(sid, '\ud800');
  const r = await post(url, bytes(`{"sid":"${sid}","rid":1,"messages":["${text}","\\ud800"]}`), { raw: true });
  t.same(seen.messages.filter((m) => m.sid === sid).map((m) => m.data), [text, '\ud800'], 'delivered as sent');
  t.match(r.text, /"data":"\\ud800"/, 'a lone surrogate goes out escaped, so the reply is still valid UTF-8');
  t.same(packetsOf(r), [{ seq: 1, data: '\ud800' }]);
});

void t.test('wrong media types are 415, before the body is read; close variants are accepted', async (t) => {
  const { url } = await startProbedServer(t);
  const body = '{"type":"setup"}';
  const refused = [
    'application/json; charset=utf-16', 'application/json;charset=iso-8859-1', 'application/jsonp',
    'application/json-seq', 'application/ld+json', 'application/problem+json', 'multipart/form-data; boundary=x',
    'text/html', '*/*', 'application/*', ';;;', 'application/json, text/plain', 'json',
  ];
  for (const contentType of refused) {
    const r = await post(url, body, { raw: true, contentType });
    expectError(t, r, 415, 'unsupported_media_type', contentType);
    t.equal(r.headers.get('connection'), 'close', `${contentType}: the unread body closes the connection`);
    await assertStillServes(t, url, contentType);
  }
  for (const encoding of ['gzip', 'br', 'deflate', 'identity, gzip']) {
    expectError(t, await post(url, body, { raw: true, headers: { 'content-encoding': encoding } }), 415, 'unsupported_media_type', `Content-Encoding ${encoding}`);
    await assertStillServes(t, url, `Content-Encoding ${encoding}`);
  }
  const accepted = ['APPLICATION/JSON', 'application/json ; charset=utf-8', 'application/json; charset="UTF-8"', 'application/json;;'];
  for (const contentType of accepted) {
    t.equal((await post(url, body, { raw: true, contentType })).status, 200, `${contentType}: accepted`);
  }
  t.equal((await post(url, body, { raw: true, headers: { 'content-encoding': 'identity' } })).status, 200, 'Content-Encoding identity: accepted');
});
