/**
 * What the orchestrator reads about processes on Linux: RSS from /proc/PID/status, CPU time from
 * /proc/PID/stat, and whether `taskset` (util-linux) is there to pin them to a core.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/PID/stat's utime and stime. */
export const CLK_TCK: number = (() => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

/** Resident set size in KiB, or null once the process is gone. */
export const rssKiB = (pid: number): number | null => {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] === undefined ? null : Number(m[1]);
  } catch {
    return null;
  }
};

/** User + system CPU time in clock ticks, or null once the process is gone. */
export const cpuTicks = (pid: number): number | null => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: fields are counted from the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return null;
  }
};

/** Busy clock ticks of the whole machine, all cores (user, nice, system, irq, softirq, steal). */
export const machineBusyTicks = (): number => {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
    return (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
  } catch {
    return NaN;
  }
};

/** True when `taskset` runs here. */
export const hasTaskset = (): boolean => spawnSync('taskset', ['--version'], { stdio: 'ignore' }).status === 0;

/** Pin every thread of `pid` to `core`; false when it could not. */
export const pinProcess = (pid: number, core: number): boolean =>
  spawnSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' }).status === 0;

/**
 * CPU use of several processes between two snapshots, as a percentage of one core. With no pids
 * it measures the whole machine, which tells how much CPU someone else took during a run.
 */
export class CpuMeter {
  readonly #pids: readonly number[] | null;
  #ticks0 = 0;
  #t0 = 0;

  constructor(pids: readonly number[] | null) {
    this.#pids = pids;
  }

  start(): void {
    this.#ticks0 = this.#sum();
    this.#t0 = performance.now();
  }

  /** Percent of one core since `start`. */
  stop(): number {
    const seconds = (performance.now() - this.#t0) / 1000;
    return seconds > 0 ? ((this.#sum() - this.#ticks0) / CLK_TCK / seconds) * 100 : NaN;
  }

  #sum(): number {
    if (this.#pids === null) return machineBusyTicks();
    return this.#pids.reduce((a, pid) => a + (cpuTicks(pid) ?? 0), 0);
  }
}
