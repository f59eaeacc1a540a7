/**
 * The comet client: the post's two-connection model from the browser's side. A poll loop keeps
 * one request held by the server; a send path carries queued messages, one request at a time.
 * Every request takes the next rid and the current ack; failures re-send the same rid.
 */
import { asRid, type Rid, type Sid } from './ids.js';
import { TypedEmitter, type Listener } from './emitter.js';
import { CometClientError } from './errors.js';
import { exchange, sleep, type ExchangeContext, type ExchangeResult } from './exchange.js';
import {
  resolveOptions,
  type CloseReason,
  type CometClientEvents,
  type CometClientOptions,
  type CometClientState,
  type ResolvedOptions,
} from './options.js';
import { Outbox } from './outbox.js';
import { defaultFetch, defaultTimers } from './transport.js';
import {
  parsePackets,
  parseSetup,
  requestBody,
  RID_WINDOW,
  terminateBody,
  type Packet,
  type SetupAnswer,
} from './wire.js';

interface Session {
  readonly sid: Sid;
  readonly wait: number;
  readonly inactivity: number;
  lastRid: number;
  /** Rids sent and not yet answered (at most one per connection, plus a 413 filler). */
  readonly outstanding: Set<number>;
  /** Woken when a rid is answered or the session ends (a loop waiting for the rid window). */
  waiters: (() => void)[];
  /** Highest seq delivered with every lower seq delivered before it. */
  ack: number;
  /** Aborted when the client leaves this session behind: cancels its requests and sleeps. */
  readonly cancel: AbortController;
  ended: boolean;
}

const closedError = (): CometClientError => new CometClientError('closed', 'the client was closed');

/**
 * A long-polling client for a comet-fsm server (wire contract v1). Works in browsers and in
 * Node 20 with nothing but the global `fetch` and `AbortController`.
 *
 * @example
 * ```ts
 * const client = new CometClient('http://127.0.0.1:8080/comet', { reconnect: true });
 * client.on('message', ({ data }) => console.log('got', data));
 * client.on('close', ({ reason }) => console.log('closed:', reason));
 * await client.connect();
 * await client.send({ text: 'hello' }); // settled once the server accepted it
 * await client.close();                 // tells the server the session is over
 * ```
 */
export class CometClient {
  /** The comet endpoint, e.g. `http://127.0.0.1:8080/comet`. */
  readonly url: string;
  readonly #o: ResolvedOptions;
  readonly #events: TypedEmitter<CometClientEvents>;
  readonly #ctx: ExchangeContext;
  readonly #outbox: Outbox;
  #state: CometClientState = 'idle';
  #session: Session | undefined;
  /** Aborted by `close()` and by fatal errors: cancels a setup in flight and its retries. */
  #life = new AbortController();
  #sendLoop: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  /** Why the client closed; messages that come back from an unwinding send loop get this. */
  #terminal: CometClientError | undefined;

  constructor(url: string, options: CometClientOptions = {}) {
    this.url = url;
    this.#o = resolveOptions(options, { fetch: defaultFetch, timers: defaultTimers });
    this.#outbox = new Outbox(this.#o.maxBodyBytes);
    this.#events = new TypedEmitter<CometClientEvents>((error, type) => this.#listenerFailed(error, type));
    this.#ctx = {
      url,
      fetch: this.#o.fetch,
      timers: this.#o.timers,
      random: this.#o.random,
      backoff: { baseMs: this.#o.retryBaseMs, capMs: this.#o.retryCapMs },
      maxRetries: this.#o.maxRetries,
      healthyAfterMs: this.#o.healthyAfterMs,
      onFailure: (error) => this.#onFailure(error),
      onHealthy: () => this.#onHealthy(),
    };
  }

  /** Where the client is in its life; the `state` event reports every change. */
  get state(): CometClientState {
    return this.#state;
  }

  /** The current session id, or null before the first setup and after close. */
  get sid(): Sid | null {
    const s = this.#session;
    return s === undefined || s.ended ? null : s.sid;
  }

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof CometClientEvents>(type: K, listener: Listener<CometClientEvents[K]>): () => void {
    return this.#events.on(type, listener);
  }

  /** Adds a listener that runs at most once; returns a function that removes it. */
  once<K extends keyof CometClientEvents>(type: K, listener: Listener<CometClientEvents[K]>): () => void {
    return this.#events.once(type, listener);
  }

  /** Removes a listener. */
  off<K extends keyof CometClientEvents>(type: K, listener: Listener<CometClientEvents[K]>): void {
    this.#events.off(type, listener);
  }

  /**
   * Sets up a session and starts polling. Resolves with the sid once the session is open; a
   * network failure is retried (see `maxRetries`), a refusal rejects. Allowed when `idle` or
   * `closed` (a closed client starts afresh with a new session).
   */
  async connect(): Promise<Sid> {
    if (this.#state !== 'idle' && this.#state !== 'closed') {
      throw new CometClientError('invalid_state', `connect() while ${this.#state}`);
    }
    this.#life = new AbortController();
    this.#closing = undefined;
    this.#terminal = undefined;
    this.#session = undefined;
    this.#setState('connecting');
    const result = await this.#setUp(null);
    if (result instanceof CometClientError) throw result;
    return result.sid;
  }

  /**
   * Queues `data` (any JSON value) for the server. Resolves when the server has accepted the
   * request that carried it: from then on it reaches the application exactly once. Rejects
   * with `closed`, `expired`, `unreachable`, `protocol`, `too_large` or `bad_message`.
   * Messages sent before `connect()` wait for the session.
   */
  send(data: unknown): Promise<void> {
    if (this.#closing !== undefined || this.#state === 'closed') return Promise.reject(closedError());
    const accepted = this.#outbox.add(data);
    this.#kickSend();
    return accepted;
  }

  /**
   * Ends the session: messages not yet on the wire are rejected with `closed`, a terminate is
   * sent (its pending packets are still delivered), then `close` fires with reason `closed`.
   * Idempotent; never rejects.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    if (this.#state === 'idle' || this.#state === 'closed') return Promise.resolve();
    this.#closing = this.#doClose();
    return this.#closing;
  }

  async #doClose(): Promise<void> {
    const session = this.#session;
    this.#setState('closing');
    if (session !== undefined) this.#wake(session);
    this.#terminal = closedError();
    this.#outbox.rejectAll(this.#terminal);
    if (session !== undefined && !session.ended) {
      const rid = this.#takeRid(session);
      // One try, no retries: the server ends an idle session by itself, so a lost terminate
      // costs only the inactivity delay. keepalive lets it outlive a closing browser tab.
      const result = await exchange(this.#ctx, () => terminateBody(session.sid, rid, session.ack), parsePackets, {
        timeoutMs: this.#o.requestTimeoutMs,
        signal: this.#life.signal,
        keepalive: true,
        maxRetries: 0,
      });
      if (result.kind === 'ok') this.#deliver(session, result.value);
      // The terminate answers every held request; a send already on the wire is answered too.
      // Give its answer a moment so its promise resolves rather than report a false `closed`.
      await this.#settleWithin(this.#sendLoop, this.#o.closeGraceMs);
      this.#endSession(session);
      await this.#sendLoop;
    }
    this.#life.abort();
    this.#setState('closed');
    this.#events.emit('close', {
      reason: 'closed',
      sid: session?.sid ?? null,
      willReconnect: false,
      serverQueueLost: false,
    });
  }

  async #settleWithin(work: Promise<void> | undefined, ms: number): Promise<void> {
    if (work === undefined) return;
    const stop = new AbortController();
    await Promise.race([work, sleep(this.#o.timers, ms, stop.signal)]);
    stop.abort();
  }

  /** Sets up a session; on failure closes the client and returns the error. */
  async #setUp(previousSid: Sid | null): Promise<Session | CometClientError> {
    const result = await exchange(this.#ctx, () => ({ type: 'setup' }), parseSetup, {
      timeoutMs: this.#o.requestTimeoutMs,
      signal: this.#life.signal,
    });
    switch (result.kind) {
      case 'ok':
        if (this.#closing !== undefined) return closedError();
        return this.#open(result.value, previousSid);
      case 'aborted':
        return closedError();
      case 'rejected':
        this.#fail(null, 'error', result.error);
        return result.error;
      case 'gave_up':
        this.#fail(null, 'unreachable', result.error);
        return result.error;
    }
  }

  #open(answer: SetupAnswer, previousSid: Sid | null): Session {
    const session: Session = {
      ...answer,
      lastRid: 0,
      outstanding: new Set(),
      waiters: [],
      ack: 0,
      cancel: new AbortController(),
      ended: false,
    };
    this.#session = session;
    this.#setState('open');
    this.#events.emit('open', { ...answer, previousSid });
    void this.#runPoll(session);
    this.#kickSend();
    return session;
  }

  #live(session: Session): boolean {
    return !session.ended && this.#closing === undefined;
  }

  /** The next rid, for a terminate: it ends the session, so a refusal costs nothing. */
  #takeRid(session: Session): Rid {
    session.lastRid += 1;
    return asRid(session.lastRid);
  }

  /**
   * The next rid for a poll or a send, once it fits in the server's window: while one
   * connection retries rid r, the other must not run more than {@link RID_WINDOW} past it, or
   * the retransmission of r would be refused as `bad_rid` (and, had r never arrived, the new rid
   * too). Resolves undefined if the session ends while waiting.
   */
  async #claimRid(session: Session): Promise<Rid | undefined> {
    while (this.#live(session)) {
      const next = session.lastRid + 1;
      let lowest = next;
      for (const r of session.outstanding) lowest = Math.min(lowest, r);
      if (next - lowest < RID_WINDOW) {
        session.lastRid = next;
        session.outstanding.add(next);
        return asRid(next);
      }
      await new Promise<void>((resolve) => session.waiters.push(resolve));
    }
    return undefined;
  }

  #release(session: Session, rid: Rid): void {
    session.outstanding.delete(rid);
    this.#wake(session);
  }

  #wake(session: Session): void {
    const waiters = session.waiters;
    session.waiters = [];
    for (const wake of waiters) wake();
  }

  /** A poll's deadline: the server holds it at most `wait`, so anything much longer is a dead connection. */
  #requestTimeout(session: Session): number {
    return session.wait + this.#o.pollMarginMs;
  }

  async #runPoll(session: Session): Promise<void> {
    while (this.#live(session)) {
      const rid = await this.#claimRid(session);
      if (rid === undefined) return;
      const result = await exchange(this.#ctx, () => requestBody(session.sid, rid, session.ack, []), parsePackets, {
        timeoutMs: this.#requestTimeout(session),
        signal: session.cancel.signal,
      });
      this.#release(session, rid);
      if (result.kind !== 'ok') {
        this.#settleFailure(session, result);
        return;
      }
      this.#deliver(session, result.value);
    }
  }

  #kickSend(): void {
    const session = this.#session;
    if (this.#sendLoop !== undefined || session === undefined || !this.#live(session) || this.#outbox.size === 0) return;
    this.#sendLoop = this.#runSend(session).finally(() => {
      this.#sendLoop = undefined;
      // The batch in flight when the client closed came back to the queue after the close
      // rejected the rest; it shares their fate.
      if (this.#terminal !== undefined) this.#outbox.rejectAll(this.#terminal);
      // Messages queued while this loop was unwinding from an ended session go on the new one.
      else this.#kickSend();
    });
  }

  async #runSend(session: Session): Promise<void> {
    // After a 413 the server never read our rid; a lower rid it never sees would stall every
    // later request (they wait for it), so the same rid is sent again without messages.
    let filler: Rid | undefined;
    while (this.#live(session) && (filler !== undefined || this.#outbox.size > 0)) {
      const rid = filler ?? (await this.#claimRid(session));
      if (rid === undefined) return;
      // Taken after the wait for a rid, so the batch includes what queued meanwhile.
      const batch = filler === undefined ? this.#outbox.takeBatch() : [];
      filler = undefined;
      const messages = batch.map((m) => m.data);
      const result = await exchange(
        this.#ctx,
        () => requestBody(session.sid, rid, session.ack, messages),
        parsePackets,
        { timeoutMs: this.#requestTimeout(session), signal: session.cancel.signal },
      );
      if (!(result.kind === 'rejected' && result.error.code === 'too_large')) this.#release(session, rid);
      if (result.kind === 'ok') {
        for (const m of batch) m.resolve();
        this.#deliver(session, result.value);
      } else if (result.kind === 'rejected' && result.error.code === 'too_large') {
        for (const m of batch) m.reject(result.error);
        filler = rid;
      } else {
        // Not accepted: back in the queue, so a reconnect sends them on the new session and a
        // close rejects them.
        this.#outbox.putBack(batch);
        this.#settleFailure(session, result);
        return;
      }
    }
  }

  /** A request ended without success: decide the session's fate. */
  #settleFailure(session: Session, result: Exclude<ExchangeResult<Packet[]>, { kind: 'ok' }>): void {
    switch (result.kind) {
      case 'aborted':
        return;
      case 'gave_up':
        this.#fail(session, 'unreachable', result.error);
        return;
      case 'rejected':
        if (result.error.code === 'unknown_session') this.#expire(session, result.error);
        else this.#fail(session, 'error', result.error);
        return;
    }
  }

  /**
   * Delivers packets once and in order. A seq at or below the ack is a re-send of one we have
   * (the answer carrying it was counted, or two answers overlapped). A gap means a packet went
   * missing; we stop there and do not ack past it, so the server sends it again.
   */
  #deliver(session: Session, packets: readonly Packet[]): void {
    for (const { seq, data } of packets) {
      if (session.ended) return;
      if (seq <= session.ack) continue;
      if (seq !== session.ack + 1) return;
      session.ack = seq;
      this.#events.emit('message', { sid: session.sid, seq, data });
    }
  }

  /** Returns false if the session had already ended. */
  #endSession(session: Session): boolean {
    if (session.ended) return false;
    session.ended = true;
    session.cancel.abort();
    this.#wake(session);
    return true;
  }

  #expire(session: Session, error: CometClientError): void {
    if (!this.#endSession(session) || this.#closing !== undefined) return;
    this.#events.emit('error', error);
    if (!this.#o.reconnect) {
      this.#terminal = new CometClientError('expired', 'the session ended before the message was accepted');
      this.#outbox.rejectAll(this.#terminal);
      this.#life.abort();
      this.#setState('closed');
      this.#events.emit('close', { reason: 'expired', sid: session.sid, willReconnect: false, serverQueueLost: true });
      return;
    }
    this.#setState('reconnecting');
    this.#events.emit('close', { reason: 'expired', sid: session.sid, willReconnect: true, serverQueueLost: true });
    // A close listener may have called close(); then there is nothing to reconnect.
    if (this.#closing === undefined) void this.#setUp(session.sid);
  }

  #fail(session: Session | null, reason: Exclude<CloseReason, 'closed' | 'expired'>, error: CometClientError): void {
    if (session !== null && !this.#endSession(session)) return;
    if (this.#closing !== undefined || this.#state === 'closed') return;
    this.#events.emit('error', error);
    this.#terminal = error;
    this.#outbox.rejectAll(error);
    this.#life.abort();
    this.#setState('closed');
    this.#events.emit('close', {
      reason,
      sid: session?.sid ?? null,
      willReconnect: false,
      serverQueueLost: session !== null,
      error,
    });
  }

  #onFailure(error: CometClientError): void {
    this.#events.emit('error', error);
    if (this.#state === 'open') this.#setState('reconnecting');
  }

  #onHealthy(): void {
    const session = this.#session;
    if (this.#state === 'reconnecting' && session !== undefined && !session.ended) this.#setState('open');
  }

  #setState(state: CometClientState): void {
    const previous = this.#state;
    if (previous === state) return;
    this.#state = state;
    this.#events.emit('state', { state, previous });
  }

  #listenerFailed(error: unknown, type: keyof CometClientEvents): void {
    if (type !== 'error') {
      this.#events.emit('error', new CometClientError('listener_error', `a '${type}' listener threw`, { cause: error }));
      return;
    }
    // An `error` listener that throws has nowhere left to report to; hand it to the host so
    // the bug is visible (window.onerror in browsers) without stopping the client.
    if (typeof globalThis.reportError === 'function') globalThis.reportError(error);
    else console.error(error);
  }
}
