/**
 * Configuration of the runnable servers (`npm start`, `npm run echo`): flags first, then the
 * environment, then the library's defaults. The library itself reads no environment variables.
 */
import { parseArgs } from 'node:util';
import pino from 'pino';
import type { CometServerOptions } from '../lib/index.js';
import type { Logger } from '../lib/otp/logger.js';

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

const FLAGS = {
  port: { type: 'string', env: 'PORT' },
  host: { type: 'string', env: 'HOST' },
  wait: { type: 'string', env: 'COMET_WAIT_MS' },
  inactivity: { type: 'string', env: 'COMET_INACTIVITY_MS' },
  'max-sessions': { type: 'string', env: 'COMET_MAX_SESSIONS' },
  'max-queue': { type: 'string', env: 'COMET_MAX_QUEUE' },
  'max-body': { type: 'string', env: 'COMET_MAX_BODY' },
  fault: { type: 'string', env: 'COMET_FAULT_MS' },
  'fault-session-ids': { type: 'string', env: 'COMET_FAULT_SESSION_IDS_MS' },
  redis: { type: 'string', env: 'COMET_REDIS_URL' },
  'node-id': { type: 'string', env: 'COMET_NODE_ID' },
  lease: { type: 'string', env: 'COMET_LEASE_MS' },
} as const;

export const USAGE = `Options (flag, or environment variable):
  --port N            PORT                 port to listen on (default ${'%PORT%'})
  --host H            HOST                 address to bind (default 127.0.0.1)
  --wait MS           COMET_WAIT_MS        how long a poll is held (default 60000)
  --inactivity MS     COMET_INACTIVITY_MS  dietimer: session ends after this long without a poll (default 45000)
  --max-sessions N    COMET_MAX_SESSIONS   setups beyond this get 503 (default 20000)
  --max-queue N       COMET_MAX_QUEUE      unacked packets per session (default 1000)
  --max-body BYTES    COMET_MAX_BODY       request body limit (default 65536)
  --fault MS          COMET_FAULT_MS       crash one session's FSM every MS (fault injection; off)
  --fault-session-ids MS  COMET_FAULT_SESSION_IDS_MS  crash the session-id server every MS (off)
  --redis URL         COMET_REDIS_URL      run as a cluster node on this Redis (redis://host:port; off:
                                           one process, no Redis). Any node serves any request.
  --node-id NAME      COMET_NODE_ID        this node's name, unique among live nodes (default: host-pid)
  --lease MS          COMET_LEASE_MS       a dead node's sessions answer 404 within about 1.25 leases
                                           (default 10000; only with --redis)
  --help                                   this text
Logging: LOG_LEVEL (trace, debug, info, warn, error; default info), JSON lines on stdout.`;

/** Parse argv and env; exits with the usage text on `--help` or a bad value. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv, defaultPort: number): ServerConfig {
  const usage = USAGE.replace('%PORT%', String(defaultPort));
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { ...Object.fromEntries(Object.entries(FLAGS).map(([k, v]) => [k, { type: v.type }])), help: { type: 'boolean' } },
      strict: true,
    }));
  } catch (err) {
    fail(`${err instanceof Error ? err.message : String(err)}\n\n${usage}`);
  }
  if (values.help === true) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  const get = (flag: keyof typeof FLAGS): string | undefined => {
    const v = values[flag];
    return typeof v === 'string' ? v : env[FLAGS[flag].env];
  };
  const int = (flag: keyof typeof FLAGS, min: number): number | undefined => {
    const raw = get(flag);
    if (raw === undefined || raw === '') return undefined;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < min) fail(`--${flag} (${FLAGS[flag].env}) must be an integer >= ${min}, got ${JSON.stringify(raw)}\n\n${usage}`);
    return n;
  };
  // No pino `pid` in the base: proc_lib's reports carry the actor's pid under that key.
  const logger = pino({ level: env.LOG_LEVEL ?? 'info', base: { os_pid: process.pid } });
  const options: CometServerOptions = {
    logger,
    ...opt('wait', int('wait', 1)),
    ...opt('inactivity', int('inactivity', 1)),
    ...opt('maxSessions', int('max-sessions', 1)),
    ...opt('maxQueue', int('max-queue', 1)),
    ...opt('maxBodyBytes', int('max-body', 2)),
    ...clusterOption(get('redis'), get('node-id'), int('lease', 1)),
  };
  return {
    port: int('port', 0) ?? defaultPort,
    host: get('host') ?? '127.0.0.1',
    options,
    logger,
    faultEveryMs: int('fault', 1),
    faultSessionIdsEveryMs: int('fault-session-ids', 1),
  };
}

function opt<K extends string>(key: K, v: number | undefined): { [P in K]?: number } {
  return (v === undefined ? {} : { [key]: v }) as { [P in K]?: number };
}

function clusterOption(redis: string | undefined, nodeId: string | undefined, lease: number | undefined): Pick<CometServerOptions, 'cluster'> {
  if (redis === undefined || redis === '') return {};
  return { cluster: { redis, ...(nodeId ? { nodeId } : {}), ...(lease !== undefined ? { lease } : {}) } };
}

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}
