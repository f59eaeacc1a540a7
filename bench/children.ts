/**
 * Every process the orchestrator starts goes through here, so that all of them (and only them)
 * are killed by PID when it exits, fails or is interrupted.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

const live = new Set<ChildProcess>();
let installed = false;

const killAll = (): void => {
  for (const c of live) {
    if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        // Already gone between the check and the kill.
      }
    }
  }
  live.clear();
};

const install = (): void => {
  if (installed) return;
  installed = true;
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      killAll();
      process.exit(130);
    });
  }
  process.on('uncaughtException', (err) => {
    console.error(err);
    killAll();
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    console.error(err);
    killAll();
    process.exit(1);
  });
};

/** `spawn`, remembered until the child exits; killed by PID on our exit. */
export const spawnTracked = (command: string, args: readonly string[], options: SpawnOptions): ChildProcess => {
  install();
  const child = spawn(command, args, options);
  live.add(child);
  child.once('exit', () => live.delete(child));
  // A failed spawn (ENOENT) surfaces as 'error'; callers learn it from 'exit' never coming.
  child.once('error', () => live.delete(child));
  return child;
};

/** SIGKILL one child by PID and wait (at most `timeoutMs`) until it has exited. */
export const killChild = (child: ChildProcess, timeoutMs = 5_000): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
      live.delete(child);
      resolve();
      return;
    }
    const timer = setTimeout(resolve, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
