// Docs that run: every ```ts block of README.md and docs/*.md is type-checked as it stands, against
// the package's own types ('comet-fsm', 'comet-fsm/otp', 'comet-fsm/supervisors', 'comet-fsm/client'
// mapped to the sources here), with the project's strict options. A page is one program told in
// steps: its ```ts blocks, in order, are compiled together as one module (a later block uses what an
// earlier one set up). A block that is not part of it (it uses names only the prose sets up, or
// shows a signature) is marked ```ts fragment: not compiled, but its imports must still name the
// package, never a repository path. The convention is described in CONTRIBUTING.md.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import ts from 'typescript';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The package's entry points, as a user imports them, mapped to their sources. */
const ENTRY_POINTS: Record<string, string> = {
  'comet-fsm': 'lib/index.ts',
  'comet-fsm/otp': 'lib/otp/index.ts',
  'comet-fsm/supervisors': 'supervisors/index.ts',
  'comet-fsm/client': 'lib/client/index.ts',
};

interface Block {
  readonly doc: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  readonly fragment: boolean;
  readonly code: string;
}

/** The info string after ```ts: nothing, or `fragment`. */
function isFragment(info: string): boolean {
  const word = info.trim();
  if (word !== '' && word !== 'fragment') throw new Error(`unknown info string after \`\`\`ts: "${word}" (only fragment)`);
  return word === 'fragment';
}

function blocksOf(doc: string, text: string): Block[] {
  const blocks: Block[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(?:ts|typescript)(?:\s+(.*))?$/.exec(lines[i] ?? '');
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !(lines[i] ?? '').startsWith('```'); i++) body.push(lines[i] ?? '');
    blocks.push({ doc, line: start + 1, fragment: isFragment(open[1] ?? ''), code: body.join('\n') });
  }
  return blocks;
}

/** A page's program: its blocks that are not fragments, in order, with where each line came from. */
interface Program {
  readonly doc: string;
  readonly code: string;
  /** The doc line of each line of `code`. */
  readonly lines: readonly number[];
}

function programOf(doc: string, blocks: readonly Block[]): Program | undefined {
  const code: string[] = [];
  const lines: number[] = [];
  for (const b of blocks.filter((x) => x.doc === doc && !x.fragment)) {
    b.code.split('\n').forEach((text, i) => {
      code.push(text);
      lines.push(b.line + 1 + i);
    });
  }
  return code.length === 0 ? undefined : { doc, code: code.join('\n'), lines };
}

const docs = ['README.md', ...(await readdir(join(root, 'docs'))).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
const blocks = (await Promise.all(docs.map(async (doc) => blocksOf(doc, await readFile(join(root, doc), 'utf8'))))).flat();

void t.test('imports in the docs name the package, not repository paths', async (t) => {
  for (const b of blocks) {
    const local = [...b.code.matchAll(/from '(\.[^']*)'/g)].map((m) => m[1]);
    t.same(local, [], `${b.doc}:${b.line}`);
  }
});

void t.test('every page\'s ts blocks that are not marked fragment type-check, as one program', async (t) => {
  const programs = docs.map((doc) => programOf(doc, blocks)).filter((p) => p !== undefined);
  t.ok(programs.length > 0, 'some pages have code to check');
  // Virtual files inside the repository, so that 'express' and the rest resolve from node_modules.
  const dir = join(root, '.docs-check');
  const files = new Map(programs.map((p) => [join(dir, `${p.doc.replace(/[/.]/g, '_')}.ts`), p] as const));
  const config = ts.getParsedCommandLineOfConfigFile(join(root, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });
  if (!config) throw new Error('tsconfig.json did not parse');
  const options: ts.CompilerOptions = {
    ...config.options,
    noEmit: true,
    skipLibCheck: true,
    baseUrl: root,
    paths: Object.fromEntries(Object.entries(ENTRY_POINTS).map(([name, file]) => [name, [file]])),
  };
  const host = ts.createCompilerHost(options);
  // Every page is a module: top-level await works, and names do not collide between pages.
  const source = (file: string): string | undefined => {
    const p = files.get(file);
    return p ? `${p.code}\nexport {};\n` : undefined;
  };
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (file, lang, onError, create) => {
    const text = source(file);
    return text === undefined ? getSourceFile(file, lang, onError, create) : ts.createSourceFile(file, text, lang, true);
  };
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (file) => files.has(file) || fileExists(file);
  const readFileText = host.readFile.bind(host);
  host.readFile = (file) => source(file) ?? readFileText(file);

  const program = ts.createProgram([...files.keys()], options, host);
  for (const [file, p] of files) {
    const diagnostics = ts.getPreEmitDiagnostics(program, program.getSourceFile(file)).map((d) => {
      const at = d.file && d.start !== undefined ? p.lines[d.file.getLineAndCharacterOfPosition(d.start).line] : undefined;
      return `${p.doc}:${at ?? '?'}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    });
    t.same(diagnostics, [], `${p.doc} compiles`);
  }
});
