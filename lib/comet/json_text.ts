/**
 * JSON checked without being built. A request body is validated in one pass over its text (the
 * grammar JSON.parse accepts, and a nesting bound), and only its top-level object is built: the
 * arrays and objects inside it stay as {@link JsonText}, parsed when someone needs their values.
 *
 * Why: what a parsed value costs is not its JSON length. 64 KiB of `[[]],[[]],…` parses into
 * about 1.3 MiB of arrays, so a stream of such requests, buffered ahead of a missing rid and never
 * delivered, used to cost the process twenty times what the budgets counted, in garbage that V8
 * returns to the system late. A request's messages are now built only when they are delivered.
 */

/**
 * An array or an object of a request body, as its JSON text: checked (well-formed, within the
 * nesting bound) but not built. `length` is its count of elements (an array) or members (an
 * object), as an array's `length` would be. `parse()` builds it, exactly as JSON.parse of the
 * whole body would have.
 */
export class JsonText {
  constructor(readonly json: string, readonly length: number) {}

  /** True for an array, false for an object. */
  get isArray(): boolean {
    return this.json.charCodeAt(0) === LBRACKET;
  }

  /** The value, built now. */
  parse(): unknown {
    return JSON.parse(this.json);
  }
}

/** Why a text was refused: it is not JSON, or it is nested deeper than allowed. */
export type ScanFailure = 'syntax' | 'depth';

/** A member of the top-level object: its key, decoded, and its value's text `[start, end)`;
 *  `length` is the value's count of elements or members (0 for a string, number or literal).
 *  For a top-level array, `key` is undefined and each element is told. */
export type OnMember = (key: string | undefined, start: number, end: number, length: number) => void;

const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const QUOTE = 0x22;
const COMMA = 0x2c;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const COLON = 0x3a;
const LBRACKET = 0x5b;
const BACKSLASH = 0x5c;
const RBRACKET = 0x5d;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LOWER_E = 0x65;
const UPPER_E = 0x45;
const LOWER_U = 0x75;

/** The characters `\` may be followed by, other than `u`: `" \ / b f n r t`. */
const SIMPLE_ESCAPES = new Set([0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74]);

function skipSpace(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i);
    if (c !== SPACE && c !== LF && c !== CR && c !== TAB) return i;
    i++;
  }
}

function isDigit(c: number): boolean {
  return c >= ZERO && c <= NINE;
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** Whether the last string {@link scanString} read has an escape (read right after the call). */
let lastEscaped = false;

/** The end of the string starting at `i` (its opening quote), past its closing quote; -1 if malformed. */
function scanString(text: string, i: number): number {
  lastEscaped = false;
  for (let j = i + 1; ; j++) {
    const c = text.charCodeAt(j);
    if (c === QUOTE) return j + 1;
    if (c === BACKSLASH) {
      lastEscaped = true;
      const e = text.charCodeAt(j + 1);
      if (e === LOWER_U) {
        if (!isHex(text.charCodeAt(j + 2)) || !isHex(text.charCodeAt(j + 3)) || !isHex(text.charCodeAt(j + 4)) || !isHex(text.charCodeAt(j + 5))) return -1;
        j += 5;
      } else if (SIMPLE_ESCAPES.has(e)) {
        j++;
      } else {
        return -1;
      }
    } else if (!(c >= SPACE)) {
      // A raw control character, or the end of the text (NaN) before the closing quote.
      return -1;
    }
  }
}

/** The end of the number starting at `i`: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`; -1 if malformed. */
function scanNumber(text: string, i: number): number {
  if (text.charCodeAt(i) === MINUS) i++;
  const first = text.charCodeAt(i);
  if (first === ZERO) i++;
  else if (isDigit(first)) while (isDigit(text.charCodeAt(++i)));
  else return -1;
  if (text.charCodeAt(i) === DOT) {
    if (!isDigit(text.charCodeAt(++i))) return -1;
    while (isDigit(text.charCodeAt(++i)));
  }
  const e = text.charCodeAt(i);
  if (e === LOWER_E || e === UPPER_E) {
    const sign = text.charCodeAt(++i);
    if (sign === PLUS || sign === MINUS) i++;
    if (!isDigit(text.charCodeAt(i))) return -1;
    while (isDigit(text.charCodeAt(++i)));
  }
  return i;
}

/** The end of `true`, `false` or `null` at `i`; -1 if none is there. */
function scanLiteral(text: string, i: number): number {
  for (const word of LITERALS) if (text.startsWith(word, i)) return i + word.length;
  return -1;
}

const LITERALS = ['true', 'false', 'null'] as const;

/**
 * A string's value, as a string of its own. Not a slice of the body: V8 makes a slice of 13 or more
 * characters a view that keeps the whole body alive, and a sid is kept for as long as its request
 * is held (60 s), so a 64 KiB body would stay with it, uncounted. JSON.parse of the literal alone
 * makes a fresh string, and decodes the escapes when there are any.
 */
function stringValue(text: string, start: number, end: number): string {
  return JSON.parse(text.slice(start, end)) as string;
}

/**
 * Check that `text` is one JSON value, as JSON.parse would accept it, nested at most `maxDepth`
 * arrays and objects deep (the top-level value is depth 1). Builds nothing: one pass, a stack of
 * at most `maxDepth` entries. `onMember` is told of each member of a top-level object in order (a
 * duplicate key too: the last one is what JSON.parse keeps), or of each element of a top-level
 * array.
 *
 * @returns undefined when the text is accepted, else why not.
 */
export function scanJson(text: string, maxDepth: number, onMember?: OnMember): ScanFailure | undefined {
  const n = text.length;
  // The opening character and the start of each array or object not closed yet.
  const open: number[] = [];
  const starts: number[] = [];
  let key = '';
  // Elements or members of the value at depth 1 (a member of the top-level value) being scanned.
  let children = 0;
  let i = skipSpace(text, 0);
  for (;;) {
    // A value starts at i.
    let start = i;
    let end: number;
    let container = false;
    const c = text.charCodeAt(i);
    if (c === LBRACKET || c === LBRACE) {
      if (open.length >= maxDepth) return 'depth';
      open.push(c);
      starts.push(i);
      if (open.length === 2) children = 0;
      i = skipSpace(text, i + 1);
      if (text.charCodeAt(i) !== (c === LBRACE ? RBRACE : RBRACKET)) {
        if (c === LBRACE) {
          const keyEnd = text.charCodeAt(i) === QUOTE ? scanString(text, i) : -1;
          if (keyEnd < 0) return 'syntax';
          if (open.length === 1 && onMember !== undefined) key = keyOf(text, i, keyEnd);
          i = afterColon(text, keyEnd);
          if (i < 0) return 'syntax';
        }
        continue;
      }
      open.pop();
      starts.pop();
      end = i + 1;
      container = true;
    } else if (c === QUOTE) {
      end = scanString(text, i);
    } else if (c === MINUS || isDigit(c)) {
      end = scanNumber(text, i);
    } else {
      end = scanLiteral(text, i);
    }
    if (end < 0) return 'syntax';
    // A value [start, end) is complete; close every array and object it completes in turn.
    for (;;) {
      const depth = open.length;
      if (depth === 0) return skipSpace(text, end) === n ? undefined : 'syntax';
      if (depth === 1) {
        onMember?.(open[0] === LBRACE ? key : undefined, start, end, container ? children : 0);
      } else if (depth === 2) {
        children++;
      }
      i = skipSpace(text, end);
      const next = text.charCodeAt(i);
      const opener = open[depth - 1];
      if (next === COMMA) {
        i = skipSpace(text, i + 1);
        if (opener === LBRACE) {
          const keyEnd = text.charCodeAt(i) === QUOTE ? scanString(text, i) : -1;
          if (keyEnd < 0) return 'syntax';
          if (depth === 1 && onMember !== undefined) key = keyOf(text, i, keyEnd);
          i = afterColon(text, keyEnd);
          if (i < 0) return 'syntax';
        }
        break;
      }
      if (next !== (opener === LBRACE ? RBRACE : RBRACKET)) return 'syntax';
      open.pop();
      start = starts.pop() as number;
      end = i + 1;
      container = true;
    }
  }
}

/** A key of the top-level object, read right after {@link scanString} read it. It needs no copy
 *  of its own: V8 keeps a property name as an internalized string of its own. */
function keyOf(text: string, start: number, end: number): string {
  return lastEscaped ? stringValue(text, start, end) : text.slice(start + 1, end - 1);
}

/** The colon after a key that ends at `end`: the start of the member's value, or -1. */
function afterColon(text: string, end: number): number {
  const colon = skipSpace(text, end);
  return text.charCodeAt(colon) === COLON ? skipSpace(text, colon + 1) : -1;
}

/** The value of a checked member: an array or object as text, a scalar built. */
function scalarOrText(text: string, start: number, end: number, length: number): unknown {
  switch (text.charCodeAt(start)) {
    case LBRACKET:
    case LBRACE:
      return new JsonText(text.slice(start, end), length);
    case QUOTE:
      return stringValue(text, start, end);
    case 0x74 /* t */:
      return true;
    case 0x66 /* f */:
      return false;
    case 0x6e /* n */:
      return null;
    default:
      // A checked JSON number: Number() reads that grammar to the same double JSON.parse makes.
      return Number(text.slice(start, end));
  }
}

/**
 * What {@link parseShallow} gives: the value, or why the text was refused.
 */
export type ShallowResult = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly failure: ScanFailure };

/**
 * Parse `text` as JSON, checked to the bottom (as {@link scanJson}) but built only at the top: a
 * top-level object gets its members, each string, number and literal built, each array and object
 * left as a {@link JsonText}; a top-level array is a JsonText itself. Members are own data
 * properties, as JSON.parse makes them (a `"__proto__"` key is a key, never the prototype; the
 * last of duplicate keys wins, in the first one's place).
 */
export function parseShallow(text: string, maxDepth: number): ShallowResult {
  const top: Record<string, unknown> = {};
  let elements = 0;
  const failure = scanJson(text, maxDepth, (key, start, end, length) => {
    if (key === undefined) {
      elements++;
      return;
    }
    const value = scalarOrText(text, start, end, length);
    // A key the object or its prototype already has (`__proto__`, whose setter would replace the
    // prototype; `toString`, read-only under frozen intrinsics; a duplicate) is defined, as
    // JSON.parse defines every key; any other is assigned, which is the same and faster.
    if (key in top) Object.defineProperty(top, key, { value, writable: true, enumerable: true, configurable: true });
    else top[key] = value;
  });
  if (failure !== undefined) return { ok: false, failure };
  const first = skipSpace(text, 0);
  switch (text.charCodeAt(first)) {
    case LBRACE:
      return { ok: true, value: top };
    case LBRACKET:
      // Only whitespace JSON allows surrounds the value, so trim() cuts exactly that.
      return { ok: true, value: new JsonText(text.trim(), elements) };
    default:
      return { ok: true, value: JSON.parse(text) as unknown };
  }
}
