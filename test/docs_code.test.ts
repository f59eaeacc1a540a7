// Docs that run: every ```ts block of README.md and docs/*.md is type-checked as it stands, one
// module per block, against the package's own types ('comet-fsm', 'comet-fsm/otp',
// 'comet-fsm/supervisors', 'comet-fsm/client' mapped to the sources here), with the project's
// strict options. The info string says what a block is: ```ts a program of its own; ```ts continued
// the next part of the page's previous program (they are compiled together, as one module); ```ts
// fragment not a program (it uses names the prose set up, or shows a signature), not compiled, but
// its imports must still name the package, never a repository path. The convention is described
// in CONTRIBUTING.md ("Code in the docs").
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

type Kind = 'program' | 'continued' | 'fragment';

interface Block {
  readonly doc: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  readonly kind: Kind;
  readonly code: string;
}

/** Info string after ```ts: nothing (a program), `continued` or `fragment`. */
function kindOf(info: string): Kind {
  const word = info.trim();
  if (word === '') return 'program';
  if (word === 'continued' || word === 'fragment') return word;
  throw new Error(`unknown info string after \`\`\`ts: "${word}" (use continued or fragment)`);
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
    blocks.push({ doc, line: start + 1, kind: kindOf(open[1] ?? ''), code: body.join('\n') });
  }
  return blocks;
}

/** A module to compile: a program block and the `continued` blocks after it, with where each line came from. */
interface Module {
  readonly doc: string;
  readonly line: number;
  readonly code: string;
  /** The doc line of each line of `code`. */
  readonly lines: readonly number[];
}

function modulesOf(blocks: readonly Block[]): { modules: Module[]; orphans: Block[] } {
  const modules: { doc: string; line: number; code: string[]; lines: number[] }[] = [];
  const orphans: Block[] = [];
  for (const b of blocks) {
    if (b.kind === 'fragment') continue;
    const last = modules.at(-1);
    const code = b.code.split('\n');
    const lines = code.map((_, i) => b.line + 1 + i);
    if (b.kind === 'program') modules.push({ doc: b.doc, line: b.line, code, lines });
    else if (last?.doc === b.doc) {
      last.code.push(...code);
      last.lines.push(...lines);
    } else orphans.push(b);
  }
  return { modules: modules.map((m) => ({ doc: m.doc, line: m.line, code: m.code.join('\n'), lines: m.lines })), orphans };
}

const docs = ['README.md', ...(await readdir(join(root, 'docs'))).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
const blocks = (await Promise.all(docs.map(async (doc) => blocksOf(doc, await readFile(join(root, doc), 'utf8'))))).flat();

void t.test('imports in the docs name the package, not repository paths', async (t) => {
  for (const b of blocks) {
    const local = [...b.code.matchAll(/from '(\.[^']*)'/g)].map((m) => m[1]);
    t.same(local, [], `${b.doc}:${b.line}`);
  }
});

void t.test('every ts block that is not marked fragment type-checks', async (t) => {
  const { modules, orphans } = modulesOf(blocks);
  t.same(orphans.map((b) => `${b.doc}:${b.line}`), [], 'a continued block follows a program block of its page');
  t.ok(modules.length > 0, 'some blocks are checked');
  // Virtual files inside the repository, so that 'express' and the rest resolve from node_modules.
  const dir = join(root, '.docs-check');
  const files = new Map(modules.map((m) => [join(dir, `${m.doc.replace(/[/.]/g, '_')}_${m.line}.ts`), m] as const));
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
  // Every module is a module: top-level await works, and names do not collide between them.
  const source = (file: string): string | undefined => {
    const m = files.get(file);
    return m ? `${m.code}\nexport {};\n` : undefined;
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
  for (const [file, m] of files) {
    const diagnostics = ts.getPreEmitDiagnostics(program, program.getSourceFile(file)).map((d) => {
      const at = d.file && d.start !== undefined ? m.lines[d.file.getLineAndCharacterOfPosition(d.start).line] ?? m.line : m.line;
      return `${m.doc}:${at}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    });
    t.same(diagnostics, [], `${m.doc}:${m.line} compiles`);
  }
});
