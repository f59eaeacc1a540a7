// docs/errors.md is the one page listing every error code. These tests hold it to the code: each
// table is compared with the code union it documents (so neither can drift), and each code is
// recognised by its family's predicate, and by no other family's.
import { readFileSync } from 'node:fs';
import t from 'tap';
import {
  CometError, HTTP_STATUS, LIBRARY_ERROR_CODES, OBSERVER_ERROR_CODES, OBSERVER_HTTP_STATUS, WIRE_ERROR_CODES,
  createCometServer, isCometError,
} from '../lib/index.js';
import { OTP_ERROR_CODES, OtpError, isOtpError } from '../lib/otp/index.js';
import { CLIENT_ERROR_CODES, CometClientError, isCometClientError } from '../lib/client/index.js';
import type {
  ChildSpecError, ChildStartError, DeleteChildResult, FlagsError, GetChildspecResult, RestartChildResult,
  StartChildError, SupStartError, TerminateChildResult,
} from '../supervisors/index.js';

// The name of each expected failure a supervisor function resolves `{ error }` with: the string,
// or the one key that names an object reason.
type ErrorOf<R> = R extends { readonly error: infer E } ? E : never;
type Named<E> = E extends string ? E : E extends Error ? never : E extends ChildStartError ? 'failed_to_start_child' : keyof E;
type SupervisorReason = Named<
  | SupStartError | StartChildError | FlagsError | ChildSpecError
  | ErrorOf<RestartChildResult> | ErrorOf<DeleteChildResult> | ErrorOf<TerminateChildResult> | ErrorOf<GetChildspecResult>
>;
// A Record literal: tsc fails if a reason is added to (or removed from) the result types and not here.
const SUPERVISOR_REASONS: Record<SupervisorReason, true> = {
  not_found: true, running: true, restarting: true, simple_one_for_one: true,
  already_started: true, already_present: true, failed_to_start_child: true, shutdown: true,
  supervisor_data: true, invalid_type: true, invalid_strategy: true, invalid_intensity: true, invalid_period: true,
  invalid_auto_shutdown: true,
  start_spec: true, bad_start_spec: true,
  invalid_child_spec: true, missing_id: true, missing_start: true, invalid_id: true, invalid_mfa: true,
  invalid_restart_type: true, invalid_shutdown: true, invalid_child_type: true, duplicate_child_name: true,
  invalid_significant: true, bad_combination: true,
};

const page = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');

/** The rows of the tables under `## heading` whose first cell is one code: code -> the other cells. */
function table(heading: string): Map<string, string[]> {
  const start = page.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`docs/errors.md has no section "## ${heading}"`);
  const end = page.indexOf('\n## ', start + 1);
  const rows = new Map<string, string[]>();
  for (const line of page.slice(start, end < 0 ? undefined : end).split('\n')) {
    const m = /^\| `([A-Za-z0-9_]+)` \|(.*)\|$/.exec(line);
    if (m?.[1] === undefined || m[2] === undefined) continue;
    if (rows.has(m[1])) throw new Error(`docs/errors.md lists ${m[1]} twice under "${heading}"`);
    rows.set(m[1], m[2].split('|').map((cell) => cell.trim()));
  }
  return rows;
}

const sorted = (xs: Iterable<string>): string[] => [...xs].sort();

void t.test('every wire code is on the page, with its HTTP status', (t) => {
  const rows = table('Wire codes');
  t.strictSame(sorted(rows.keys()), sorted(WIRE_ERROR_CODES));
  for (const code of WIRE_ERROR_CODES) t.equal(rows.get(code)?.[0], String(HTTP_STATUS[code]), `${code}: status`);
  t.end();
});

void t.test('every library code (ERR_COMET_*) is on the page', (t) => {
  t.strictSame(sorted(table('Library codes').keys()), sorted(LIBRARY_ERROR_CODES));
  t.end();
});

void t.test('every OTP code (ERR_OTP_*) is on the page', (t) => {
  t.strictSame(sorted(table('OTP codes').keys()), sorted(OTP_ERROR_CODES));
  t.end();
});

void t.test('every named supervisor result reason is on the page', (t) => {
  t.strictSame(sorted(table('Supervisor result reasons').keys()), sorted(Object.keys(SUPERVISOR_REASONS)));
  t.end();
});

void t.test('every observer code is on the page, with its HTTP status', (t) => {
  const rows = table('Observer codes');
  t.strictSame(sorted(rows.keys()), sorted(OBSERVER_ERROR_CODES));
  for (const code of OBSERVER_ERROR_CODES) t.equal(rows.get(code)?.[0], String(OBSERVER_HTTP_STATUS[code]), `${code}: status`);
  t.end();
});

void t.test('every client code is on the page', (t) => {
  t.strictSame(sorted(table('Client codes').keys()), sorted(CLIENT_ERROR_CODES));
  t.end();
});

void t.test('other pages link to errors.md instead of keeping their own lists', (t) => {
  for (const doc of ['otp.md', 'client.md', 'supervisor.md', 'protocol.md']) {
    const text = readFileSync(new URL(`../docs/${doc}`, import.meta.url), 'utf8');
    t.match(text, /\(errors\.md(#[a-z-]+)?\)/, `${doc} links to errors.md`);
    const listed = [...WIRE_ERROR_CODES, ...OTP_ERROR_CODES, ...CLIENT_ERROR_CODES].filter((c) => text.includes(`| \`${c}\` |`));
    t.strictSame(listed, [], `${doc} has no table of codes of its own`);
  }
  t.end();
});

void t.test('each code is recognised by its own family and no other', (t) => {
  for (const code of [...WIRE_ERROR_CODES, ...LIBRARY_ERROR_CODES]) {
    const err = new CometError(code, code);
    t.ok(isCometError(err) && !isOtpError(err) && !isCometClientError(err), `${code}: CometError only`);
    t.equal(err.status, code.startsWith('ERR_') ? undefined : HTTP_STATUS[code as keyof typeof HTTP_STATUS], `${code}: status`);
  }
  for (const code of OTP_ERROR_CODES) {
    const err = new OtpError(code, code);
    t.ok(isOtpError(err) && !isCometError(err) && !isCometClientError(err), `${code}: OtpError only`);
  }
  for (const code of CLIENT_ERROR_CODES) {
    const err = new CometClientError(code, code);
    t.ok(isCometClientError(err) && !isCometError(err) && !isOtpError(err), `${code}: CometClientError only`);
  }
  t.end();
});

void t.test('the predicates are duck-typed: an error from another copy of the library is recognised', (t) => {
  // Plain objects stand for instances of another copy's classes: instanceof would be false.
  t.ok(isCometError({ name: 'CometError', code: 'ERR_COMET_SESSION_CONTEXT_STALE', message: 'm' }));
  t.ok(isCometError({ code: 'shutting_down' }));
  t.ok(isOtpError({ name: 'OtpError', code: 'ERR_OTP_EXIT', message: 'm', reason: 'killed' }));
  t.ok(isCometClientError({ name: 'CometClientError', code: 'unreachable', message: 'm' }));
  const others: unknown[] = [null, undefined, 'ERR_OTP_NOPROC', new Error('x'), { code: 'ECONNRESET' }, { code: 1 }, { code: 'closed' }];
  for (const o of others) t.notOk(isCometError(o) || isOtpError(o) || isCometClientError(o), `not ours: ${String(JSON.stringify(o))}`);
  t.end();
});

void t.test('createCometServer throws ERR_COMET_INVALID_OPTION for a numeric option that is not a positive integer', async (t) => {
  for (const options of [{ wait: 0 }, { inactivity: -1 }, { maxSessions: 1.5 }, { maxBodyBytes: Number.NaN }, { maxQueue: Infinity }]) {
    const err: unknown = await createCometServer(options).then(
      async (server) => { await server.close(); return undefined; },
      (e: unknown) => e,
    );
    t.ok(isCometError(err), JSON.stringify(options));
    t.match(err, { name: 'CometError', code: 'ERR_COMET_INVALID_OPTION', status: undefined, message: /must be a positive integer/ });
  }
});

void t.test('createCometServer throws ERR_COMET_START_FAILED, with the start error as cause, when its tree does not start', async (t) => {
  const err: unknown = await createCometServer({ intensity: -1 }).then(
    async (server) => { await server.close(); return undefined; },
    (e: unknown) => e,
  );
  t.ok(isCometError(err));
  t.match(err, { code: 'ERR_COMET_START_FAILED', cause: { supervisor_data: { invalid_intensity: -1 } } });
});
