#!/usr/bin/env node
// Builds the browser files with esbuild (one ESM file each, no runtime dependencies):
//   dist/client/comet-client.js      the client (`comet-fsm/client` for browsers), with a source map
//   dist/client/comet-client.min.js  the same, minified
//   dist/client/chat.js              the chat demo's page script; it imports ./comet-client.js
//   dist/client/observer.js          the observer page's script, the client bundled in (the library serves it)
// platform 'browser' makes esbuild refuse any node: import, so a Node-only dependency creeping
// into lib/client fails the build instead of failing in the browser.
// Usage: node scripts/build-client.mjs [outdir] [--quiet]
import { build } from 'esbuild';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The page imports the client through its source path; in the browser it is the served bundle. */
const clientAsExternal = {
  name: 'client-as-external',
  setup(b) {
    b.onResolve({ filter: /lib\/client\/index\.js$/ }, () => ({ path: './comet-client.js', external: true }));
  },
};

/**
 * Builds the four files into `outdir` (default dist/client) and returns their paths.
 * @param {{ outdir?: string }} [options]
 */
export async function buildClient(options = {}) {
  const outdir = resolve(root, options.outdir ?? 'dist/client');
  const common = {
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2020'],
    logLevel: 'warning',
    absWorkingDir: root,
  };
  const files = {
    client: join(outdir, 'comet-client.js'),
    clientMin: join(outdir, 'comet-client.min.js'),
    page: join(outdir, 'chat.js'),
    observer: join(outdir, 'observer.js'),
  };
  await Promise.all([
    build({ ...common, entryPoints: ['lib/client/index.ts'], outfile: files.client, sourcemap: true }),
    build({ ...common, entryPoints: ['lib/client/index.ts'], outfile: files.clientMin, minify: true, sourcemap: true }),
    build({ ...common, entryPoints: ['examples/chat/chat.ts'], outfile: files.page, plugins: [clientAsExternal] }),
    build({ ...common, entryPoints: ['lib/observer/page/observer.ts'], outfile: files.observer }),
  ]);
  return files;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const args = process.argv.slice(2);
  const outdir = args.find((a) => !a.startsWith('--'));
  const files = await buildClient(outdir === undefined ? {} : { outdir });
  // --quiet: a build chained before a command (`npm run --silent client`) adds nothing to its output;
  // esbuild's warnings and errors still go to stderr.
  if (!args.includes('--quiet')) for (const f of Object.values(files)) process.stdout.write(`built ${f}\n`);
}
