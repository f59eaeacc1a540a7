#!/usr/bin/env node
/**
 * `npm start`: the chat demo. Serves the page at `/`, its script and the client bundle, and the
 * comet endpoint at `/comet`; every chat line a client sends goes to every session.
 * Flags and environment as every runnable server (`--port`/`PORT`, `--host`/`HOST`, ...; see
 * `--help`); default http://127.0.0.1:8080/. Prints one JSON line containing "listening" and the
 * URL when ready; SIGINT/SIGTERM close the comet server gracefully and exit 0.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chatHooks, chatRoutes, defaultAssets } from '../examples/chat/server.js';
import { adminRoutes } from './admin.js';
import { runServer } from './run_server.js';
import { loadConfig } from './server_config.js';

/** The demo's port when neither `--port` nor `PORT` says otherwise. */
export const DEMO_DEFAULT_PORT = 8080;

const config = loadConfig(process.argv.slice(2), process.env, DEMO_DEFAULT_PORT);
const assets = defaultAssets();
if (!existsSync(join(assets.bundleDir, 'chat.js'))) {
  config.logger.warn({ bundleDir: assets.bundleDir }, 'chat bundle missing: run `npm run build:client` first');
}
const routes = chatRoutes(assets, config.logger);
// GET /admin/stats only: the demo is public, its broadcast is the chat itself.
const admin = adminRoutes({ broadcast: false });
await runServer(config, {
  name: 'comet-fsm chat demo',
  routes: (comet, req, res) => admin(comet, req, res) || routes(req, res),
  hooks: (comet) => chatHooks(comet, config.logger),
});
