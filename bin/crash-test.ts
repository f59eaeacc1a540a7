#!/usr/bin/env node
/**
 * `npm run crash-test`: run the supervisor crash tests (test/supervisor_*.test.ts) through tap and
 * print what a person wants to read: each case with pass/fail, and under the crash cases the
 * report the test itself emitted (the tree before, what was done to it, the tree after with what
 * was restarted). Failures show the failing assertion and tap's diagnostics.
 *
 * Nothing is simulated here: tap runs the real test files (raw TAP on a pipe, coverage off since
 * this is a subset; `npm test` checks coverage), this script only reformats its output, and it
 * exits non-zero when tap does or when any case failed.
 *
 * Usage: npm run crash-test [-- test/supervisor_nesting.test.ts ...]
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** Run from the source tree or from dist/bin: the repo root is the nearest comet-fsm package.json. */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'comet-fsm') return dir;
    dir = dirname(dir);
  }
  throw new Error('crash-test: cannot find the comet-fsm package root');
}

interface Case {
  readonly name: string;
  ok: boolean | undefined;
  readonly reports: string[][];
  readonly failures: string[];
}

interface FileResult {
  readonly file: string;
  ok: boolean | undefined;
  readonly cases: Case[];
  readonly problems: string[];
}

const root = repoRoot();
const args = process.argv.slice(2);
const files = args.length > 0
  ? args
  : readdirSync(join(root, 'test')).filter((f) => /^supervisor_.*\.test\.ts$/.test(f)).sort().map((f) => `test/${f}`);

const tapBin = join(root, 'node_modules', 'tap', 'dist', 'esm', 'run.mjs');
const child = spawn(process.execPath, [tapBin, '--disable-coverage', '--reporter=tap', ...files], {
  cwd: root,
  env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
  stdio: ['ignore', 'pipe', 'inherit'],
});

const results: FileResult[] = [];
let file: FileResult | undefined;
let current: Case | undefined;
/** tap's YAML diagnostics of the failing assertion being read, and their indentation. */
let yaml: string[] | undefined;
let yamlIndent = 0;
const YAML_LINES = 12;

const indentOf = (line: string): number => (line.length - line.trimStart().length) / 4;
const point = /^(not )?ok \d+ - (.*?)(?: # time=.*)?$/;

function onLine(raw: string): void {
  const depth = indentOf(raw);
  const line = raw.trim();
  if (yaml) {
    if (line === '---') {
      yamlIndent = raw.length - raw.trimStart().length;
    } else if (line === '...') {
      current?.failures.push(...yaml.slice(0, YAML_LINES), ...(yaml.length > YAML_LINES ? ['      …'] : []));
      yaml = undefined;
    } else {
      yaml.push(`      ${raw.slice(yamlIndent)}`);
    }
    return;
  }
  if (depth === 0) {
    const sub = /^# Subtest: (.*)$/.exec(line);
    if (sub?.[1]) {
      file = { file: sub[1], ok: undefined, cases: [], problems: [] };
      results.push(file);
      return;
    }
    const m = point.exec(line);
    if (m && file) file.ok = !m[1];
    return;
  }
  if (!file) return;
  if (depth === 1) {
    const sub = /^# Subtest: (.*)$/.exec(line);
    if (sub?.[1]) {
      current = { name: sub[1], ok: undefined, reports: [], failures: [] };
      file.cases.push(current);
      return;
    }
    const m = point.exec(line);
    if (m) {
      const name = m[2] ?? '';
      const c = file.cases.find((x) => x.name === name && x.ok === undefined);
      if (c) c.ok = !m[1];
      else if (m[1]) file.problems.push(name); // a file-level failure: a timeout, a crash outside a case
    }
    return;
  }
  if (!current) return;
  if (depth === 2) {
    const report = /^# crash-report (.*)$/.exec(line);
    if (report?.[1]) {
      try {
        current.reports.push(JSON.parse(report[1]) as string[]);
      } catch {
        current.reports.push([report[1]]);
      }
      return;
    }
    const m = point.exec(line);
    if (m?.[1]) {
      current.failures.push(`    x ${m[2] ?? ''}`);
      yaml = [];
    }
  }
}

const rl = createInterface({ input: child.stdout });
rl.on('line', onLine);

const exitCode = await new Promise<number>((resolve) => {
  child.on('close', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
});

let passed = 0;
let failed = 0;
const out: string[] = ['', 'Supervisor crash tests (tap: ' + files.join(' ') + ')', ''];
for (const f of results) {
  out.push(`${f.ok === false ? 'FAIL' : 'ok  '} ${f.file}`);
  for (const c of f.cases) {
    if (c.ok) passed++;
    else failed++;
    out.push(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}`);
    for (const r of c.reports) out.push(...r.map((l) => `         ${l}`), '');
    if (!c.ok) out.push(...c.failures);
  }
  for (const p of f.problems) {
    failed++;
    out.push(`  FAIL ${p}`);
  }
  out.push('');
}
if (results.length === 0) {
  failed++;
  out.push('no test output from tap (see the errors above)');
}
out.push(`${passed} passed, ${failed} failed`);
process.stdout.write(`${out.join('\n')}\n`);
process.exitCode = exitCode !== 0 || failed > 0 ? 1 : 0;
