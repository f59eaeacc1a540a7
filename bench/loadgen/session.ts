/**
 * What the workers drive: one client session of a long-polling server, whatever its protocol.
 * A session keeps one poll in flight at all times and sends messages on a second connection.
 */
import type { BenchError } from './errors.js';
import type { HttpTarget } from './http-conn.js';

/** Counters shared by every session of one worker (cheaper than one object per session). */
export interface SessionCounters {
  /** HTTP requests sent, polls and sends alike. */
  requests: number;
  /** Failed requests, non-2xx answers and sessions that died. */
  errors: number;
}

/** Options every protocol's session takes. */
export interface SessionOptions {
  readonly target: HttpTarget;
  /** The comet endpoint (v1: `/comet`; Engine.IO: `/engine.io/`). */
  readonly path: string;
  readonly counters: SessionCounters;
  /** Each application message the server pushed, once (duplicates already dropped). */
  readonly onData: (data: string) => void;
}

/** One client session. */
export interface LoadSession {
  /** Set the session up and send its first poll; `cb` runs once, after the setup reply. */
  open(cb: (err: BenchError | null) => void): void;
  /** Queue one message for the server; sent at once unless a send is already in flight. */
  send(message: string): void;
  /** Stop polling and close both connections. */
  close(): void;
  /** False before `open` succeeds and after the server ended the session or it kept failing. */
  readonly alive: boolean;
}

/** A session dies after this many failures in a row, so a broken server cannot spin a worker. */
export const MAX_CONSECUTIVE_FAILURES = 5;

/** Host header value for a target. */
export const hostHeader = (t: HttpTarget): string => `${t.host}:${t.port}`;
