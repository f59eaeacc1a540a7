/**
 * The little of Redis the cluster needs, behind an interface of our own so the client library can
 * be swapped (redis_bus.ts is the ioredis one). Pub/sub is at-most-once, as Erlang's distribution
 * is: a message published while a subscriber is away is gone, and nothing here retries it.
 */

/** What the bus tells the cluster about its two connections. */
export type BusEvent =
  /** The command connection is ready (first connect, or back after a fault). */
  | { readonly type: 'up' }
  /** The command connection is lost: commands fail at once until `up`. */
  | { readonly type: 'down'; readonly reason: string }
  /** The subscriber connection is lost: messages published meanwhile are lost. */
  | { readonly type: 'sub_down'; readonly reason: string }
  /** The subscriber connection is back and subscribed again. */
  | { readonly type: 'sub_up' };

export interface ClusterBus {
  /** True while the command connection is ready. */
  readonly up: boolean;
  /**
   * Publish a message; resolves with how many subscribers received it (0: nobody listens on that
   * channel). Rejects at once while Redis is unreachable: nothing is queued to be sent later.
   */
  publish(channel: string, message: string): Promise<number>;
  /** Run a Lua script (EVAL) with these arguments and no keys. Rejects at once while Redis is unreachable. */
  evalScript(script: string, args: readonly string[]): Promise<unknown>;
  /** Subscribe; kept across reconnections. */
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  /** Every message received on a subscribed channel. */
  onMessage(handler: (channel: string, message: string) => void): void;
  /** Connection events. */
  onEvent(handler: (event: BusEvent) => void): void;
  /** Close both connections. */
  close(): Promise<void>;
}
