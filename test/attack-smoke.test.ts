// The attack script (`npm run attack`) runs end to end on its cheapest case, so that it does not
// rot between the runs that fill docs/reliability.md. It asserts that the script measures, not
// what the server does under the attack: that is the figures' job, and changes as the server does.
import t from 'tap';
import { parseAttackArgs } from '../bench/attack/args.js';
import { CASES } from '../bench/attack/cases/index.js';
import { row } from '../bench/attack/report.js';
import { runCase } from '../bench/attack/runner.js';
import { bundle } from './fixtures/soak_process.js';

void t.test('attack: absolute-form for a second, against the echo server, with a victim', async (t) => {
  const out = await bundle(t, ['bin/echo.ts', 'bench/attack/victim.ts']);
  const echo = out.echo ?? '';
  const victim = out.victim ?? '';
  const c = CASES.find((x) => x.name === 'absolute-form');
  if (c === undefined) throw new Error('no absolute-form case');
  const args = parseAttackArgs(['absolute-form', '--duration', '1', '--budget', '64']);
  const r = await runCase(c, args, { targets: { echo, chat: echo, 'huge-push': echo }, victim });

  t.equal(r.case, 'absolute-form');
  t.ok(r.server.alive, 'the echo server still answers /healthz after the case');
  t.equal(r.server.exit, null, 'and was still running');
  t.ok(r.rss.idleMiB > 10 && r.rss.peakMiB >= r.rss.idleMiB * 0.9, `RSS read from /proc (${r.rss.idleMiB} -> ${r.rss.peakMiB} MiB)`);
  t.ok(r.rss.limitMiB !== null && r.rss.limitMiB > r.rss.idleMiB + 64, 'with --budget the RSS target has a limit');
  t.ok(r.victim.before.ok > 0 && r.victim.during.ok > 0, 'the victim echoed before and during the attack');
  t.ok(r.victim.during.p50 > 0, 'and timed it');
  t.match(r.outcome, { summary: /^setup: \d{3}/ }, 'the case reports the status of its absolute-form setup');
  t.ok(r.log.bytes >= 0 && r.log.lines >= 0, 'log output counted');
  t.match(row(r), /^\| 8 \| absolute-form \| pass \|/, 'one table row');
});

void t.test('attack flags: names, all, --list, unknown flags', (t) => {
  t.same(parseAttackArgs(['inbox-ahead,burst-3000']).names, ['inbox-ahead', 'burst-3000']);
  t.equal(parseAttackArgs(['all', '--duration', '5']).durationS, 5);
  t.equal(parseAttackArgs(['all']).budgetMiB, null, 'the budget is unknown unless given');
  t.ok(parseAttackArgs(['--list']).list);
  t.throws(() => parseAttackArgs([]), /name a case/);
  t.throws(() => parseAttackArgs(['all', '--nope']), /unknown flag/);
  t.throws(() => parseAttackArgs(['all', '--duration', '0']), /--duration/);
  t.equal(CASES.length, 9, 'one case per row of the issue table');
  t.same(
    CASES.map((c) => c.row),
    [1, 2, 3, 4, 5, 6, 7, 8, 9],
  );
  t.end();
});
