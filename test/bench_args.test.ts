// The bench's flag settings: every server runs with Node's defaults and again with the same tuned
// V8 flags, and the report gives one table per setting (issue 15).
import t from 'tap';
import { argvWithFlags, parseArgs, TUNED_V8_FLAGS } from '../bench/args.js';
import { markdownReport, type RunRecord } from '../bench/report.js';

void t.test('flag_settings: both by default, the default alone for --quick or when asked', (t) => {
  t.same(parseArgs([]).flags, ['default', 'tuned']);
  t.same(parseArgs(['--quick']).flags, ['default']);
  t.same(parseArgs(['--flags', 'tuned']).flags, ['tuned']);
  t.same(parseArgs([]).tunedFlags, TUNED_V8_FLAGS);
  t.same(parseArgs(['--tuned-flags', '--max-semi-space-size=32']).tunedFlags, ['--max-semi-space-size=32']);
  t.throws(() => parseArgs(['--flags', 'fast']), /unknown flag setting fast/);
  t.throws(() => parseArgs(['--tuned-flags', 'semi=64']), /each starting with --/);
  t.end();
});

void t.test('argv_with_flags: after the node binary, never into a wrapper command', (t) => {
  t.same(argvWithFlags(['/bin/node', 'dist/bin/echo.js'], ['--a', '--b'], '/bin/node'), ['/bin/node', '--a', '--b', 'dist/bin/echo.js']);
  t.same(argvWithFlags(['/bin/node', 'x.js'], [], '/bin/node'), ['/bin/node', 'x.js']);
  t.same(argvWithFlags(['./wrapper.sh'], ['--a'], '/bin/node'), ['./wrapper.sh']);
  t.end();
});

void t.test('report_per_setting: one table per flag setting, each with its own ratios', (t) => {
  const rec = (server: RunRecord['server'], flags: 'default' | 'tuned', rt: number): RunRecord => ({
    type: 'result', time: '', case: 'echo-20', kind: 'echo', run: 1, server, flags, answered: true, figures: { round_trips_per_s: rt, other_cpu_pct: 0 },
  });
  const md = markdownReport([rec('raw', 'default', 100), rec('comet-fsm', 'default', 50), rec('raw', 'tuned', 100), rec('comet-fsm', 'tuned', 80)], ['raw', 'comet-fsm'], TUNED_V8_FLAGS);
  const [plain, tuned] = md.split(/^### /m).slice(1);
  t.match(plain, /^Node's default flags/);
  t.match(plain, /\| echo-20 \| round trips\/s \| 100 \| 50 \| 0\.50× \|/);
  t.match(tuned, new RegExp(`^every server with \`${TUNED_V8_FLAGS.join(' ')}\``));
  t.match(tuned, /\| echo-20 \| round trips\/s \| 100 \| 80 \| 0\.80× \|/);
  t.notMatch(markdownReport([rec('raw', 'default', 100)], ['raw'], TUNED_V8_FLAGS), /###/, 'one setting: no section titles');
  t.end();
});
