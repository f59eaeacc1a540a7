#!/usr/bin/env node
// `npm pack`'s prepack build: a clean dist/ with only what the package ships (tsconfig.package.json:
// lib, supervisors and the comet-fsm CLI, no source maps; the browser client bundle). It starts
// from an empty dist/ so that no file of an older build, or of `npm run build` (bench, examples),
// can end up in the tarball. Prints nothing on success: `npm pack --json` writes its JSON to the
// same stdout.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildClient } from './build-client.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
rmSync(resolve(root, 'dist'), { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', resolve(root, 'tsconfig.package.json')], { stdio: ['ignore', 'inherit', 'inherit'] });
if (r.status !== 0) process.exit(r.status ?? 1);
await buildClient();
