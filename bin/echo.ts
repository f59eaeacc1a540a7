#!/usr/bin/env node
/**
 * `npm run echo`: every message a client sends is pushed back to that session as one packet whose
 * data equals the message. Admin endpoints for tests and benchmarks:
 *   POST /admin/broadcast {"data": X}  -> pushes X to every live session, answers {"sessions": N}
 *   GET  /admin/stats                  -> {"sessions": N, "held": H} (plus "node", "forwarded", ...
 *                                         on a cluster node; see bin/admin.ts)
 * Binds 127.0.0.1 by default and prints one JSON line containing "listening" when ready.
 */
import { adminRoutes } from './admin.js';
import { runServer } from './run_server.js';
import { loadConfig } from './server_config.js';

const config = loadConfig(process.argv.slice(2), process.env, 8081);
await runServer(config, {
  name: 'comet-fsm echo',
  routes: adminRoutes({ broadcast: true }),
  // The echo is pushed in place, inside the event that delivered the message: no second event.
  hooks: () => ({
    onMessage(_sid, data, session) {
      session.push(data);
    },
  }),
});
