/**
 * The Erlang/OTP layer on nact: gen_server, gen_fsm, gen_statem, proc_lib (links, exits, monitors, shutdown), sys, timers,
 * the process registry and an injectable clock. Supervisors live in `supervisors/`.
 */
export * as genServer from './gen_server.js';
export * as genFsm from './gen_fsm.js';
export * as genStatem from './gen_statem.js';
export * as procLib from './proc_lib.js';
export * as sys from './sys.js';
export type { Pid, From, Link, StartOptions, StartResult, Shutdown, MonitorRef, ExitMessage } from './proc_lib.js';
export { monitor, demonitor, isAlive, kill, reply, registeredName, getState, link, unlink, exit } from './proc_lib.js';
export type { TimerRef } from './timers.js';
export { whereis } from './registry.js';
export { ManualClock, systemClock, type Clock } from './clock.js';
export { OtpError, OTP_ERROR_CODES, isOtpError, isNormalExit, type ExitReason, type OtpErrorCode } from './errors.js';
export { nullLogger, type Logger } from './logger.js';
export { startSystem, stopSystem, type SystemRef } from './nact.js';
