/**
 * Per-client limits on opening sessions, as nginx's `limit_conn` and `limit_req` do per address:
 * a client address may hold at most `maxSessionsPerClient` live sessions, and set up at most
 * `setupRatePerClient` sessions a second (a token bucket holding one second's worth). Without
 * them one address could take every slot of `maxSessions` in a second and keep them with one
 * cheap poll each per inactivity period, and every other client's setup would get 503.
 *
 * A refusal is `429` with its own code and a `Retry-After`. Memory is bounded by the clients
 * that hold sessions or set one up in the last second: an entry with neither is dropped.
 */
import type { Sid } from './ids.js';

/** Live sessions one client address may hold: 0.5% of DEFAULT_MAX_SESSIONS (20,000), enough
 *  for an office behind one NAT; lower it with `maxSessions`, or 0 for no limit. */
export const DEFAULT_MAX_SESSIONS_PER_CLIENT = 100;
/** Setups per second one client address may make (a bucket of as many, refilled at this rate):
 *  a page load makes one. 0 for no limit. */
export const DEFAULT_SETUP_RATE_PER_CLIENT = 20;
/** `Retry-After` (seconds) of `429 too_many_sessions`: a slot frees when one of the client's
 *  sessions ends, which the server cannot foresee. */
export const TOO_MANY_SESSIONS_RETRY_AFTER_S = 10;

/** Why a setup was refused, with the `Retry-After` to send. */
export interface ClientRefusal {
  readonly error: 'rate_limited' | 'too_many_sessions';
  readonly message: string;
  /** Whole seconds, at least 1. */
  readonly retryAfter: number;
}

export interface ClientLimitsOptions {
  /** 0: no limit. */
  readonly maxSessionsPerClient: number;
  /** Setups per second; 0: no limit. */
  readonly setupRatePerClient: number;
  /** Monotonic ms (the server's clock). */
  readonly now: () => number;
}

interface Client {
  /** Live sessions plus setups admitted and not yet finished. */
  sessions: number;
  tokens: number;
  /** When `tokens` was last brought up to date (ms). */
  at: number;
}

/** The per-client session table and setup buckets of one server. */
export class ClientLimits {
  readonly #o: ClientLimitsOptions;
  readonly #clients = new Map<string, Client>();
  readonly #owner = new Map<Sid, string>();
  #sweptAt = 0;

  constructor(options: ClientLimitsOptions) {
    this.#o = options;
  }

  /** Whether any limit is on (both 0: this table stays empty). */
  get enabled(): boolean {
    return this.#o.maxSessionsPerClient > 0 || this.#o.setupRatePerClient > 0;
  }

  /** Clients with an entry now (live sessions or a bucket refilling): for tests and metrics. */
  get size(): number {
    return this.#clients.size;
  }

  /**
   * A setup from `client` is about to open a session: take a token and a session slot, or say
   * why not. Every admitted setup ends in one {@link settle}.
   */
  admit(client: string): ClientRefusal | undefined {
    if (!this.enabled) return undefined;
    const now = this.#o.now();
    this.#sweep(now);
    const c = this.#refill(client, now);
    const max = this.#o.maxSessionsPerClient;
    if (max > 0 && c.sessions >= max) {
      return { error: 'too_many_sessions', message: `this client holds ${max} sessions, the most allowed`, retryAfter: TOO_MANY_SESSIONS_RETRY_AFTER_S };
    }
    const rate = this.#o.setupRatePerClient;
    if (rate > 0) {
      if (c.tokens < 1) {
        return { error: 'rate_limited', message: `more than ${rate} setups a second from this client`, retryAfter: Math.max(1, Math.ceil((1 - c.tokens) / rate)) };
      }
      c.tokens -= 1;
    }
    c.sessions++;
    return undefined;
  }

  /**
   * The admitted setup is over: it opened `sid` (its slot is held until {@link ended}), or it
   * failed, or its session already ended (`undefined`: the slot is given back).
   */
  settle(client: string, sid: Sid | undefined): void {
    if (!this.enabled) return;
    if (sid === undefined) this.#release(client);
    else this.#owner.set(sid, client);
  }

  /** A session ended (any reason): its client's slot is free again. */
  ended(sid: Sid): void {
    const client = this.#owner.get(sid);
    if (client === undefined) return;
    this.#owner.delete(sid);
    this.#release(client);
  }

  #release(client: string): void {
    const c = this.#clients.get(client);
    if (c !== undefined && c.sessions > 0) c.sessions--;
  }

  #refill(client: string, now: number): Client {
    const rate = this.#o.setupRatePerClient;
    let c = this.#clients.get(client);
    if (c === undefined) {
      c = { sessions: 0, tokens: rate, at: now };
      this.#clients.set(client, c);
      return c;
    }
    c.tokens = Math.min(rate, c.tokens + ((now - c.at) / 1000) * rate);
    c.at = now;
    return c;
  }

  /** Drop, about once a second, the clients with no session whose bucket has refilled. */
  #sweep(now: number): void {
    if (now - this.#sweptAt < 1000) return;
    this.#sweptAt = now;
    const rate = this.#o.setupRatePerClient;
    for (const [key, c] of this.#clients) {
      if (c.sessions === 0 && (rate === 0 || c.tokens + ((now - c.at) / 1000) * rate >= rate)) this.#clients.delete(key);
    }
  }
}

/**
 * The key a client is counted under: its IPv4 address, or the /64 prefix of its IPv6 address
 * (one subscriber usually gets a whole /64, so counting single IPv6 addresses would let one
 * client be 2^64 clients). An IPv4-mapped IPv6 address (`::ffff:127.0.0.2`) is its IPv4 address.
 */
export function clientKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1] !== undefined) return mapped[1];
  if (!address.includes(':')) return address;
  const zone = address.indexOf('%');
  const bare = (zone === -1 ? address : address.slice(0, zone)).toLowerCase();
  const [head = '', tail] = bare.split('::', 2);
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
