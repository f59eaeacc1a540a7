/**
 * The logger the OTP layer reports through: a subset of pino's API, so a pino logger can be passed
 * in as it is. Supervisors report every crash (child id, reason, what they did) here.
 */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const noop = (): void => {};

/** A logger that drops everything: the default, so the library is silent unless asked. */
export const nullLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };
