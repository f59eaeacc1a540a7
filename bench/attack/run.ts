/**
 * `npm run attack -- NAME [NAME...] | all | --list [--duration S --count N --budget MIB --json ...]`
 *
 * The attacks of issue 11, one case per row of its table. For each case: start the target server
 * as a child process (default options, LOG_LEVEL=info, a capped heap), measure its idle RSS, start
 * the victim clients on 127.0.0.1 and let them run alone for a moment, then attack from 127.0.0.2
 * (and up) until the case is done, its duration is over or the server is gone; then check the
 * server still answers, kill it by PID, and print one table row judged against the issue's
 * targets. Loopback only; every process it starts is its own and is killed by PID.
 * Exits 1 only when a case could not be run, never because of a figure.
 */
import { appendFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAttackArgs, USAGE } from './args.js';
import { CASES } from './cases/index.js';
import { row, TABLE_HEAD } from './report.js';
import { runCase, type Scripts } from './runner.js';
import { HOST } from './target.js';

const here = dirname(fileURLToPath(import.meta.url));
const dist = resolve(here, '..', '..');

const SCRIPTS: Scripts = {
  targets: {
    echo: join(dist, 'bin', 'echo.js'),
    chat: join(dist, 'bin', 'demo.js'),
    'huge-push': join(here, 'huge-push-server.js'),
  },
  victim: join(here, 'victim.js'),
};

const main = async (): Promise<number> => {
  const args = parseAttackArgs(process.argv.slice(2));
  if (args.list) {
    for (const c of CASES) console.log(`${String(c.row).padStart(2)} ${c.name.padEnd(16)} ${c.summary}${c.count === null ? '' : ` (--count: ${c.count.what}, default ${c.count.default})`}`);
    return 0;
  }
  const chosen = args.names.includes('all') ? CASES : args.names.map((n) => {
    const c = CASES.find((x) => x.name === n);
    if (c === undefined) throw new Error(`no case ${n} (${CASES.map((x) => x.name).join(', ')})`);
    return c;
  });
  for (const s of [...Object.values(SCRIPTS.targets), SCRIPTS.victim]) if (!existsSync(s)) throw new Error(`${s} is missing: run \`npm run build\` first`);
  if (!args.json) {
    console.log(`attack: ${chosen.length} case(s), up to ${args.durationS} s each; target heap ${args.heapMiB} MiB, killed past ${args.rssCapMiB} MiB RSS; budget ${args.budgetMiB === null ? 'unknown' : `${args.budgetMiB} MiB`} + ${args.sessionKiB} KiB per session; ${args.victims} victim clients on ${HOST}`);
    console.log('');
    console.log(TABLE_HEAD);
  }
  let code = 0;
  for (const c of chosen) {
    try {
      const r = await runCase(c, args, SCRIPTS);
      console.log(args.json ? JSON.stringify(r) : row(r));
      if (args.jsonl !== null) appendFileSync(args.jsonl, `${JSON.stringify(r)}\n`);
    } catch (e) {
      // The case could not be run at all (the target did not start): say so, go on with the next.
      const error = e instanceof Error ? e.message : String(e);
      console.log(args.json ? JSON.stringify({ type: 'attack', case: c.name, row: c.row, error }) : `| ${c.row} | ${c.name} | not run: ${error} |`);
      code = 1;
    }
  }
  return code;
};

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    console.error(USAGE);
    process.exit(2);
  },
);
