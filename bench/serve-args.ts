/**
 * Flags and environment shared by the bench's runnable servers, read the way `npm run echo` reads
 * them: `--port N` / `--port=N` over `PORT`, `--host H` over `HOST`, default 127.0.0.1:0.
 */

/** Where a runnable server binds. */
export interface ListenAt {
  readonly port: number;
  readonly host: string;
}

const flag = (argv: readonly string[], name: string): string | undefined => {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === `--${name}`) return argv[i + 1];
    if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
  }
  return undefined;
};

/** Parse `--port`/`--host` and `PORT`/`HOST`; throws on a port that is not 0..65535. */
export const listenAt = (argv: readonly string[], env: NodeJS.ProcessEnv): ListenAt => {
  const port = Number(flag(argv, 'port') ?? env.PORT ?? '0');
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad port: ${String(port)}`);
  return { port, host: flag(argv, 'host') ?? env.HOST ?? '127.0.0.1' };
};

/** The one JSON line the orchestrator waits for. */
export const listeningLine = (server: string, host: string, port: number): string =>
  JSON.stringify({ msg: 'listening', server, host, port, pid: process.pid });

/**
 * Exit when stdin ends: the orchestrator keeps a pipe open to each server it starts, so a server
 * whose orchestrator died without cleaning up (SIGKILL) does not live on. Only when stdin is a pipe:
 * run by hand from a terminal, the server stays up.
 */
export const exitWithParent = (): void => {
  if (process.stdin.isTTY === true) return;
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
};
