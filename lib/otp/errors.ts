/**
 * Exit reasons and the named errors of the OTP layer. Expected failures are values with named
 * reasons (as OTP's `{error, not_found}`); unexpected ones are exits carrying an `OtpError` whose
 * stable `code` callers match on (not `instanceof`), with {@link isOtpError}. Every code is listed in
 * docs/errors.md.
 */

/**
 * Why a process exited, as OTP spells it: `'normal'`, `'shutdown'`, `{ shutdown: term }`,
 * `'killed'` (brutal kill: no terminate ran), or anything else, which is abnormal (a thrown Error,
 * a named OtpError, or a reason returned in `{ stop: reason }`).
 */
// The named literals are OTP's reasons, kept for editors' completion though `string` subsumes them.
// eslint-disable-next-line @typescript-eslint/no-redundant-type-constituents
export type ExitReason = 'normal' | 'shutdown' | 'killed' | { readonly shutdown: unknown } | string | Error;

/** `normal`, `shutdown` and `{shutdown, _}` are the exits a `transient` child is not restarted for. */
export function isNormalExit(reason: ExitReason): boolean {
  return reason === 'normal' || reason === 'shutdown' || (typeof reason === 'object' && 'shutdown' in reason);
}

export type OtpErrorCode =
  /** The process is not running (dead or never started): Erlang's `noproc`. */
  | 'ERR_OTP_NOPROC'
  /** No reply within the call's timeout: Erlang's `timeout` exit from gen_server:call. */
  | 'ERR_OTP_TIMEOUT'
  /** The process exited while a call waited for its reply; `reason` says why. */
  | 'ERR_OTP_EXIT'
  /** A callback returned a value that is not one of its tagged results (`bad_return_value`,
   *  gen_statem's `bad_return_from_state_function`); `reason` holds the value. */
  | 'ERR_OTP_BAD_RETURN';

/** An error with a stable `code` and, where there is one, the exit `reason` behind it. */
export class OtpError extends Error {
  readonly code: OtpErrorCode;
  readonly reason: unknown;

  constructor(code: OtpErrorCode, message: string, reason?: unknown) {
    super(message);
    this.name = 'OtpError';
    this.code = code;
    this.reason = reason;
  }
}

// A Record, not an array, so the compiler checks the list against the union both ways.
const CODES: Readonly<Record<OtpErrorCode, true>> = {
  ERR_OTP_NOPROC: true,
  ERR_OTP_TIMEOUT: true,
  ERR_OTP_EXIT: true,
  ERR_OTP_BAD_RETURN: true,
};

/** Every {@link OtpErrorCode}. */
export const OTP_ERROR_CODES: readonly OtpErrorCode[] = Object.freeze(Object.keys(CODES) as OtpErrorCode[]);

/**
 * True when `err` carries one of the OTP layer's codes. Duck-typed on `code`, not `instanceof`:
 * it also recognises an OtpError made by another copy of this library.
 *
 * @example
 * ```ts
 * try {
 *   await genServer.call(pid, { op: 'get' });
 * } catch (err) {
 *   if (isOtpError(err) && err.code === 'ERR_OTP_NOPROC') return undefined;
 *   throw err;
 * }
 * ```
 */
export function isOtpError(err: unknown): err is OtpError {
  if (typeof err !== 'object' || err === null || !('code' in err)) return false;
  const code: unknown = err.code;
  return typeof code === 'string' && Object.hasOwn(CODES, code);
}

/** Turn whatever a handler threw into an exit reason: Errors stay as they are. */
export function exitReasonOf(thrown: unknown): ExitReason {
  if (thrown instanceof Error) return thrown;
  if (typeof thrown === 'string') return thrown;
  return new Error(`non-error thrown: ${describe(thrown)}`);
}

/** A short, safe description of a reason for logs (never throws, never huge). */
export function describe(reason: unknown): string {
  if (reason instanceof Error) return `${reason.name}: ${reason.message}`;
  if (typeof reason === 'string') return reason;
  try {
    const s = JSON.stringify(reason);
    return s === undefined ? String(reason) : s.length > 200 ? `${s.slice(0, 200)}…` : s;
  } catch {
    return String(reason);
  }
}
