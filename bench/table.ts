/**
 * `node dist/bench/table.js bench/results/<timestamp>.jsonl`: print the Markdown tables of a
 * finished (or interrupted) bench run again from its JSON lines.
 */
import { readFileSync } from 'node:fs';
import { TUNED_V8_FLAGS } from './args.js';
import { markdownReport, type RunRecord } from './report.js';
import type { ServerName } from './server-proc.js';

const file = process.argv[2];
if (file === undefined) {
  console.error('usage: node dist/bench/table.js bench/results/<timestamp>.jsonl');
  process.exit(2);
}
const lines = readFileSync(file, 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => JSON.parse(l) as { type: string; tunedFlags?: string[] });
const records = lines.filter((r): r is RunRecord & { tunedFlags?: string[] } => r.type === 'result');
const tuned = lines.find((l) => l.type === 'meta')?.tunedFlags ?? [...TUNED_V8_FLAGS];
const order: readonly ServerName[] = ['raw', 'engine.io', 'comet-fsm'];
const servers = order.filter((s) => records.some((r) => r.server === s));
console.log(markdownReport(records, servers, tuned));
