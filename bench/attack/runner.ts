/**
 * One attack case from start to end: start the target server as a child process (default options,
 * LOG_LEVEL=info, a capped heap), measure its idle RSS, let the victim clients on 127.0.0.1 run
 * alone for a moment, then attack from 127.0.0.2 (and up) until the case is done, its duration is
 * over or the server is gone; check the server still answers, kill it by PID, judge the targets.
 */
import { freePort } from '../server-proc.js';
import type { AttackArgs } from './args.js';
import { AttackContext, type AttackCase, type Outcome, type TargetKind } from './case.js';
import { judge, type AttackResult } from './report.js';
import { HOST, startTarget } from './target.js';
import { startVictim, type VictimStats } from './victim-handle.js';

/** The victim runs alone this long before the attack: its "before" figures (ms). */
export const BASELINE_MS = 2_000;
/** The target settles this long before its idle RSS is read (ms). */
export const SETTLE_MS = 1_000;
/** A short attack still gets this much victim time (ms), or the whole duration if shorter. */
export const MIN_WINDOW_MS = 5_000;
/** Past its duration, a case that does not stop by itself is abandoned after this (ms). */
export const GRACE_MS = 30_000;
/** How long the server has to answer `/healthz` at the end (ms): an attack may have it busy. */
export const ALIVE_TIMEOUT_MS = 10_000;

/** The scripts a run starts with node: each target server, and the victim. */
export interface Scripts {
  readonly targets: Readonly<Record<TargetKind, string>>;
  readonly victim: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mib = (kib: number | null): number => (kib ?? 0) / 1024;

/** Run case `c`. */
export const runCase = async (c: AttackCase, args: AttackArgs, scripts: Scripts): Promise<AttackResult> => {
  const port = await freePort();
  const target = await startTarget({ argv: [scripts.targets[c.target], ...args.serverArgs], heapMiB: args.heapMiB, rssCapMiB: args.rssCapMiB }, port);
  try {
    await sleep(SETTLE_MS);
    const idleKiB = target.rssKiB() ?? 0;
    const victim = startVictim(scripts.victim, { port, kind: c.victim, clients: args.victims, localAddress: HOST });
    try {
      await sleep(BASELINE_MS);
      const before = await victim.mark();
      target.markLog();
      target.markPeak();
      const durationMs = args.durationS * 1000;
      const t0 = performance.now();
      const ctx = new AttackContext(HOST, port, args.count, t0 + durationMs, () => target.logBytes);
      target.onExit((why) => ctx.stop(why));
      const deadline = setTimeout(() => ctx.stop('deadline'), durationMs);
      let abandon: NodeJS.Timeout | undefined;
      let outcome: Outcome | { error: string };
      try {
        outcome = await Promise.race([
          c.run(ctx),
          new Promise<never>((_, reject) => {
            abandon = setTimeout(() => reject(new Error(`did not stop within ${GRACE_MS / 1000} s of its deadline`)), durationMs + GRACE_MS);
          }),
        ]);
      } catch (e) {
        outcome = { error: e instanceof Error ? e.message : String(e) };
      } finally {
        clearTimeout(deadline);
        clearTimeout(abandon);
      }
      const ended = ctx.stopReason ?? 'done';
      const window = Math.min(durationMs, MIN_WINDOW_MS) - (performance.now() - t0);
      if (window > 0 && target.exited === null) await sleep(window);
      const attackSeconds = (performance.now() - t0) / 1000;
      const during: VictimStats = await victim.mark();
      const alive = await target.healthy(ALIVE_TIMEOUT_MS);
      ctx.stop('done');
      const sessions = 'error' in outcome ? 0 : outcome.sessions;
      const limitMiB = args.budgetMiB === null ? null : mib(idleKiB) + args.budgetMiB + ((sessions + args.victims) * args.sessionKiB) / 1024;
      const partial: Omit<AttackResult, 'targets'> = {
        type: 'attack',
        case: c.name,
        row: c.row,
        time: new Date().toISOString(),
        ended,
        attackSeconds,
        server: { alive, exit: target.exited },
        rss: { idleMiB: mib(idleKiB), peakMiB: mib(target.peakKiB), limitMiB },
        log: { bytes: target.logBytes, lines: target.logLines, sids: target.sids },
        victim: { before, during },
        outcome,
      };
      return { ...partial, targets: judge(partial) };
    } finally {
      await victim.stop();
    }
  } finally {
    await target.stop();
  }
};
