// JSON checked without being built (lib/comet/json_text.ts): the scanner accepts exactly what
// JSON.parse accepts, the shallow parse builds only the top-level object, and over HTTP a request
// buffered ahead of a missing rid has its messages built only when they are delivered.
import t from 'tap';
import fc from 'fast-check';
import { JsonText, parseShallow, scanJson } from '../lib/comet/json_text.js';
import { WireClient } from './fixtures/http.js';
import { startProbedServer } from './fixtures/raw_socket.js';

const accepts = (text: string): boolean => {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
};

/** What parseShallow made, with every JsonText built: what JSON.parse makes of the whole text. */
const built = (value: unknown): unknown => {
  if (value instanceof JsonText) return value.parse();
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value)) {
    Object.defineProperty(out, k, { value: built((value as Record<string, unknown>)[k]), enumerable: true, writable: true, configurable: true });
  }
  return out;
};

void t.test('scanJson accepts exactly what JSON.parse accepts', (t) => {
  const edges = [
    '{}', '[]', ' \t\r\n{"a":1} \n', '0', '-0', '1E-5', '0.5e+10', '"\\u00e9\\ud800"', '"\\/\\b\\f\\n\\r\\t\\"\\\\"', 'true', 'null',
    '{"a":1,}', '[1,]', '[,1]', '01', '-', '-a', '1.', '.5', '1e', '1e+', '+1', '"\\x"', '"\\u12G4"', '"\\u12"', '"a\tb"', '"a\u0000"',
    'tru', 'nulll', '{"a" 1}', '{a:1}', "{'a':1}", '{"a":1 "b":2}', '[1 2]', '{} {}', '', ' ', '"abc', '[1]]', '{"a":{}}}', 'NaN',
    'Infinity', '[1,2', '{"a":1', '{"a":}', '{"a"}', '{,}', '[1,,2]', '\u00a0{}', '{}\u00a0', '[-]', '"\u2028"', '//x\n{}',
  ];
  // Names in ASCII: a raw U+2028 in a test name would break the TAP stream itself.
  const nameOf = (text: string): string => JSON.stringify(text).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  for (const text of edges) t.equal(scanJson(text, 1000) === undefined, accepts(text), nameOf(text));

  // Valid JSON of every shape, with whitespace; then the same with one character changed,
  // dropped or added from JSON's own alphabet: the verdict is JSON.parse's every time.
  const spaced = fc.tuple(fc.jsonValue({ maxDepth: 6 }), fc.constantFrom('', ' ', '\n\t', '\r\n  ')).map(([v, ws]) => {
    const text = JSON.stringify(v, null, ws === '' ? undefined : ws) ?? 'null';
    return `${ws}${text}${ws}`;
  });
  fc.assert(fc.property(spaced, (text) => scanJson(text, 1000) === undefined), { numRuns: 500 });
  const alphabet = fc.constantFrom(...'{}[]:,"\\ -+.eE0123456789tfnulrasx\t\n\u0001é'.split(''));
  const mutated = fc.tuple(spaced, fc.nat(), fc.integer({ min: 0, max: 2 }), alphabet).map(([text, at, how, c]) => {
    const i = text.length === 0 ? 0 : at % text.length;
    return how === 0 ? text.slice(0, i) + c + text.slice(i + 1) : how === 1 ? text.slice(0, i) + text.slice(i + 1) : text.slice(0, i) + c + text.slice(i);
  });
  fc.assert(fc.property(mutated, (text) => (scanJson(text, 1000) === undefined) === accepts(text)), { numRuns: 3000 });
  t.end();
});

void t.test('scanJson bounds the nesting: the top-level value is depth 1', (t) => {
  t.equal(scanJson('['.repeat(64) + ']'.repeat(64), 64), undefined, '64 deep in 64');
  t.equal(scanJson('['.repeat(65) + ']'.repeat(65), 64), 'depth', '65 deep in 64');
  t.equal(scanJson('{"a":'.repeat(65) + '1' + '}'.repeat(65), 64), 'depth', 'objects too');
  t.equal(scanJson(`["${'['.repeat(100)}"]`, 2), undefined, 'brackets inside a string do not count');
  t.equal(scanJson('['.repeat(100_000), 64), 'depth', 'a deep unclosed body stops at the bound, not at the end');
  t.end();
});

void t.test('parseShallow builds the top-level object only; the rest stays checked text that builds to what JSON.parse makes', (t) => {
  const nested = `[${Array.from({ length: 10_000 }, () => '[[]]').join(',')}]`;
  const text = `{"sid":"s\\u0031","rid":2,"ack":0,"messages":${nested},"x":{"y":[1,{"z":null}]},"n":-1.5e3,"b":true,"e":""}`;
  const r = parseShallow(text, 64);
  t.ok(r.ok);
  if (!r.ok) return;
  const v = r.value as Record<string, unknown>;
  t.ok(v['messages'] instanceof JsonText, 'the messages are not built');
  t.equal((v['messages'] as JsonText).length, 10_000, 'but counted');
  t.ok((v['messages'] as JsonText).isArray);
  t.ok(v['x'] instanceof JsonText && !v['x'].isArray && v['x'].length === 1, 'an unknown object member: text too');
  t.same([v['sid'], v['rid'], v['ack'], v['n'], v['b'], v['e']], ['s1', 2, 0, -1500, true, ''], 'scalars built, escapes decoded');
  t.strictSame(built(r.value), JSON.parse(text), 'built, it is what JSON.parse makes');

  // Keys as JSON.parse makes them: own data properties, duplicates last-wins in the first place.
  const tricky = parseShallow('{"__proto__":{"polluted":1},"a":1,"constructor":{"prototype":{"p":1}},"a":[2]}', 64);
  t.ok(tricky.ok);
  if (tricky.ok) {
    const o = tricky.value as Record<string, unknown>;
    t.equal(Object.getPrototypeOf(o), Object.prototype, 'the prototype is untouched');
    t.ok(Object.hasOwn(o, '__proto__'), '__proto__ is an own key');
    t.same(Object.keys(o), Object.keys(JSON.parse('{"__proto__":{},"a":1,"constructor":{},"a":[2]}') as object), 'key order as JSON.parse');
    t.strictSame((o['a'] as JsonText).parse(), [2], 'the last duplicate wins');
  }
  t.equal(({} as Record<string, unknown>)['polluted'], undefined, 'no pollution');
  const own = parseShallow('{"toString":"t","hasOwnProperty":null,"z":-0,"big":1e400,"tiny":1e-400}', 64);
  t.ok(own.ok);
  if (own.ok) {
    const o = own.value as Record<string, unknown>;
    const read = (k: string): unknown => Object.getOwnPropertyDescriptor(o, k)?.value;
    t.same([read('toString'), read('hasOwnProperty')], ['t', null], 'keys Object.prototype has are own keys');
    t.ok(Object.is(o['z'], -0) && o['big'] === Infinity && Object.is(o['tiny'], 0), 'numbers as JSON.parse reads them (-0, 1e400, 1e-400)');
  }

  const arr = parseShallow(' [1,[2],{"a":3}] ', 64);
  t.ok(arr.ok && arr.value instanceof JsonText && arr.value.isArray && arr.value.length === 3, 'a top-level array is text itself');
  t.strictSame(parseShallow('"x"', 64), { ok: true, value: 'x' }, 'a top-level scalar is built');
  t.strictSame(parseShallow('{"a":[[1]]}', 2), { ok: false, failure: 'depth' });
  t.strictSame(parseShallow('{"a":1,}', 64), { ok: false, failure: 'syntax' });
  t.end();
});

void t.test('over HTTP, messages buffered ahead of a missing rid are not built until they are delivered', async (t) => {
  const { url, seen } = await startProbedServer(t, { wait: 200 });
  const c = await WireClient.open(url);
  // 8,000 `[[]]`: about 32 KiB of text, 16,000 arrays once built.
  const messages = Array.from({ length: 8_000 }, () => [[]]);
  const size = JSON.stringify(messages).length;
  // Every JSON.parse of a text at least as long as the messages: only the delivery may make one.
  const real = JSON.parse;
  const big: number[] = [];
  JSON.parse = ((text: string, reviver?: (this: unknown, key: string, value: unknown) => unknown) => {
    if (typeof text === 'string' && text.length >= size) big.push(text.length);
    return real(text, reviver);
  }) as typeof JSON.parse;
  t.teardown(() => {
    JSON.parse = real;
  });
  t.equal((await c.request({ rid: 2, messages })).status, 200, 'rid 2, ahead of rid 1: taken');
  t.equal((await c.request({ rid: 2, messages })).status, 200, 'sent again: a duplicate');
  t.same(big, [], 'neither built its messages');
  t.equal(seen.messages.length, 0);
  t.equal((await c.request({ rid: 1, messages: ['first'] })).status, 200, 'rid 1 fills the gap');
  t.equal(big.length, 1, 'rid 2\'s messages built once, to deliver them');
  JSON.parse = real;
  t.equal(seen.messages.length, 8_001, 'every message delivered');
  t.strictSame(seen.messages[1]?.data, [[]], 'as sent');
});
