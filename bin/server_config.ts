/**
 * Configuration of the runnable servers (`npm start`, `npm run echo`): flags first, then the
 * environment, then the library's defaults. The library itself reads no environment variables.
 * A bad flag or value is one line on stderr and exit status 1, never a stack.
 */
import { parseArgs } from 'node:util';
import pino from 'pino';
import type { Logger } from '../lib/otp/logger.js';
import { MIN_TOKEN_LENGTH, type CometServerOptions, type CorsOption } from '../lib/index.js';

export interface ServerConfig {
  readonly port: number;
  readonly host: string;
  readonly options: CometServerOptions;
  readonly logger: Logger;
  /** `--fault N`: crash one random session's FSM every N ms (crash tests, soak). */
  readonly faultEveryMs: number | undefined;
  /** `--fault-session-ids N`: crash the session-id server every N ms (restart-intensity crash tests). */
  readonly faultSessionIdsEveryMs: number | undefined;
}

/** Every option of the runnable servers, with the environment variable that sets it too. */
export const FLAGS = {
  port: { type: 'string', env: 'PORT' },
  host: { type: 'string', env: 'HOST' },
  cors: { type: 'string', env: 'COMET_CORS' },
  wait: { type: 'string', env: 'COMET_WAIT_MS' },
  inactivity: { type: 'string', env: 'COMET_INACTIVITY_MS' },
  'max-sessions': { type: 'string', env: 'COMET_MAX_SESSIONS' },
  'max-queue': { type: 'string', env: 'COMET_MAX_QUEUE' },
  'max-body': { type: 'string', env: 'COMET_MAX_BODY' },
  'max-session-bytes': { type: 'string', env: 'COMET_MAX_SESSION_BYTES' },
  'max-server-bytes': { type: 'string', env: 'COMET_MAX_SERVER_BYTES' },
  'max-response-bytes': { type: 'string', env: 'COMET_MAX_RESPONSE_BYTES' },
  'max-sessions-per-client': { type: 'string', env: 'COMET_MAX_SESSIONS_PER_CLIENT' },
  'setup-rate-per-client': { type: 'string', env: 'COMET_SETUP_RATE_PER_CLIENT' },
  'trust-proxy': { type: 'boolean', env: 'COMET_TRUST_PROXY' },
  fault: { type: 'string', env: 'COMET_FAULT_MS' },
  'fault-session-ids': { type: 'string', env: 'COMET_FAULT_SESSION_IDS_MS' },
  redis: { type: 'string', env: 'COMET_REDIS_URL' },
  'node-id': { type: 'string', env: 'COMET_NODE_ID' },
  lease: { type: 'string', env: 'COMET_LEASE_MS' },
  'observer-token': { type: 'string', env: 'COMET_OBSERVER_TOKEN' },
  'observer-actions': { type: 'boolean', env: 'COMET_OBSERVER_ACTIONS' },
} as const;

type Flag = keyof typeof FLAGS;

export const USAGE = `Options (flag, or environment variable):
  --port N            PORT                 port to listen on (default ${'%PORT%'})
  --host H            HOST                 address to bind (default 127.0.0.1)
  --cors ORIGINS      COMET_CORS           let pages on these origins call /comet: a comma-separated list of
                                           exact origins (https://app.example.com,http://localhost:3000), or *
                                           for any origin (default: off; the library's \`cors\` option)
  --wait MS           COMET_WAIT_MS        how long a poll is held (default 60000)
  --inactivity MS     COMET_INACTIVITY_MS  dietimer: session ends after this long without a poll (default 45000)
  --max-sessions N    COMET_MAX_SESSIONS   setups beyond this get 503 (default 20000)
  --max-queue N       COMET_MAX_QUEUE      unacked packets per session (default 1000)
  --max-body BYTES    COMET_MAX_BODY       request body limit (default 65536)
  --max-session-bytes BYTES  COMET_MAX_SESSION_BYTES  bytes one session may hold: buffered messages,
                                           unacked packets, unflushed responses (default 4194304)
  --max-server-bytes BYTES   COMET_MAX_SERVER_BYTES   bytes all sessions may hold together (default 268435456)
  --max-response-bytes BYTES COMET_MAX_RESPONSE_BYTES longest response; larger packets are refused (default 1048576)
  --max-sessions-per-client N  COMET_MAX_SESSIONS_PER_CLIENT  live sessions per client address, beyond: 429 (default 100; 0: off)
  --setup-rate-per-client N    COMET_SETUP_RATE_PER_CLIENT    setups per second per client address, beyond: 429 (default 20; 0: off)
  --trust-proxy       COMET_TRUST_PROXY=1  count clients by the last X-Forwarded-For entry (only behind a proxy that sets it)
  --fault MS          COMET_FAULT_MS       crash one session's FSM every MS (fault injection; off)
  --fault-session-ids MS  COMET_FAULT_SESSION_IDS_MS  crash the session-id server every MS (off)
  --redis URL         COMET_REDIS_URL      run as a cluster node on this Redis (redis://host:port; off:
                                           one process, no Redis). Any node serves any request.
  --node-id NAME      COMET_NODE_ID        this node's name, unique among live nodes (default: host-pid)
  --lease MS          COMET_LEASE_MS       a dead node's sessions answer 404 within about 1.25 leases
                                           (default 10000; only with --redis)
  --observer-token T  COMET_OBSERVER_TOKEN the live view at /observer needs this token (16+ characters);
                                           without it /observer exists only when bound to loopback
  --observer-actions  COMET_OBSERVER_ACTIONS=1  allow the observer's fault injection with the token on
                                           a non-loopback address (on loopback it is always allowed)
  --help                                   this text
Logging: LOG_LEVEL (trace, debug, info, warn, error; default info), JSON lines on stdout.
A bad option, or a port already in use, prints one line on stderr and exits with status 1.`;

/** A bad flag or value: its message is the one line the user sees. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** What the command line asks for: run with this configuration, or print the usage. */
export type ParsedConfig = { readonly kind: 'run'; readonly config: ServerConfig } | { readonly kind: 'help'; readonly usage: string };

/**
 * Parses argv and env without side effects.
 * @throws UsageError on an unknown flag or a bad value.
 */
export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv, defaultPort: number): ParsedConfig {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { ...Object.fromEntries(Object.entries(FLAGS).map(([k, v]) => [k, { type: v.type }])), help: { type: 'boolean' } },
      strict: true,
    }));
  } catch (err) {
    // node:util's messages go on about '--' and positionals; the first sentence is the news.
    const message = err instanceof Error ? err.message : String(err);
    throw new UsageError(`${message.split('. ')[0]?.replace(/\.$/, '') ?? message}; see --help`);
  }
  if (values.help === true) return { kind: 'help', usage: USAGE.replace('%PORT%', String(defaultPort)) };
  const get = (flag: Flag): string | undefined => {
    const v = values[flag];
    return typeof v === 'string' ? v : env[FLAGS[flag].env];
  };
  const observerToken = get('observer-token');
  if (observerToken !== undefined && observerToken.length < MIN_TOKEN_LENGTH) {
    throw new UsageError(`--observer-token (COMET_OBSERVER_TOKEN) must be at least ${MIN_TOKEN_LENGTH} characters; see --help`);
  }
  const observerActions = values['observer-actions'] === true || env.COMET_OBSERVER_ACTIONS === '1';
  const int = (flag: Flag, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined => {
    const raw = get(flag);
    if (raw === undefined || raw === '') return undefined;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new UsageError(`--${flag} (${FLAGS[flag].env}) must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}; see --help`);
    }
    return n;
  };
  const cors = parseCors(get('cors'));
  // No pino `pid` in the base: proc_lib's reports carry the actor's pid under that key.
  // Synchronous writes: pino's default stdout stream writes asynchronously and, on
  // process.exit, flushes its buffer while an earlier write may still be in flight, so the line
  // that says why the process exits could come out before lines logged earlier. The servers log
  // little (repeats are aggregated), so a write(2) per line costs nothing that matters.
  const logger = pino({ level: env.LOG_LEVEL ?? 'info', base: { os_pid: process.pid } }, pino.destination({ dest: 1, sync: true }));
  const options: CometServerOptions = {
    logger,
    ...(cors === undefined ? {} : { cors }),
    ...opt('wait', int('wait', 1)),
    ...opt('inactivity', int('inactivity', 1)),
    ...opt('maxSessions', int('max-sessions', 1)),
    ...opt('maxQueue', int('max-queue', 1)),
    ...opt('maxBodyBytes', int('max-body', 2)),
    ...opt('maxSessionBytes', int('max-session-bytes', 1)),
    ...opt('maxServerBytes', int('max-server-bytes', 1)),
    ...opt('maxResponseBytes', int('max-response-bytes', 1)),
    ...opt('maxSessionsPerClient', int('max-sessions-per-client', 0)),
    ...opt('setupRatePerClient', int('setup-rate-per-client', 0)),
    ...(values['trust-proxy'] === true || env.COMET_TRUST_PROXY === '1' ? { trustProxy: true } : {}),
    ...clusterOption(get('redis'), get('node-id'), int('lease', 1)),
    // The runnable servers serve the observer: on loopback as is, elsewhere only with the token.
    observer: { ...(observerToken === undefined ? {} : { token: observerToken }), actions: observerActions },
  };
  const config: ServerConfig = {
    port: int('port', 0, 65_535) ?? defaultPort,
    host: get('host') ?? '127.0.0.1',
    options,
    logger,
    faultEveryMs: int('fault', 1),
    faultSessionIdsEveryMs: int('fault-session-ids', 1),
  };
  return { kind: 'run', config };
}

/**
 * `--cors` / `COMET_CORS` as the library's `cors` option: `*` allows every origin, otherwise a
 * comma-separated list of exact origins, each checked here so a typo (a trailing slash, a path)
 * fails at start instead of silently allowing nothing.
 */
export function parseCors(raw: string | undefined): CorsOption | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  if (raw.trim() === '*') return () => true;
  const origins = raw.split(',').map((o) => o.trim()).filter((o) => o !== '');
  for (const origin of origins) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || parsed.origin !== origin) {
      throw new UsageError(`--cors (COMET_CORS): ${JSON.stringify(origin)} is not an origin like https://app.example.com (scheme, host, optional port; no path or trailing slash); see --help`);
    }
  }
  return origins;
}

/** Parses argv and env; on `--help` prints the usage and exits 0, on a bad value prints one line and exits 1. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv, defaultPort: number): ServerConfig {
  let parsed: ParsedConfig;
  try {
    parsed = parseConfig(argv, env, defaultPort);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  if (parsed.kind === 'help') {
    process.stdout.write(`${parsed.usage}\n`);
    process.exit(0);
  }
  return parsed.config;
}

function opt<K extends string>(key: K, v: number | undefined): { [P in K]?: number } {
  return (v === undefined ? {} : { [key]: v }) as { [P in K]?: number };
}

function clusterOption(redis: string | undefined, nodeId: string | undefined, lease: number | undefined): Pick<CometServerOptions, 'cluster'> {
  if (redis === undefined || redis === '') return {};
  return { cluster: { redis, ...(nodeId ? { nodeId } : {}), ...(lease !== undefined ? { lease } : {}) } };
}
