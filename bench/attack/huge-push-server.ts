#!/usr/bin/env node
/**
 * An attack fixture, for `npm run attack -- huge-push` only: the echo server, except that the
 * message "huge-push" makes `onMessage` push `--push-count` packets (default 4) of `--push-mib` MiB
 * (default 150) each, distinct strings, in place. Every other message is echoed, so the victim
 * works as against the echo server. Same flags and environment as bin/echo.ts otherwise.
 */
import { runServer } from '../../bin/run_server.js';
import { loadConfig } from '../../bin/server_config.js';
import { HUGE_PUSH_MESSAGE } from './bodies.js';
/** Packets pushed, and the size of each (MiB), unless the flags say otherwise. */
export const DEFAULT_PUSH_COUNT = 4;
export const DEFAULT_PUSH_MIB = 150;

const own = (argv: string[], flag: string, fallback: number): number => {
  const i = argv.indexOf(flag);
  if (i < 0) return fallback;
  const n = Number(argv[i + 1]);
  argv.splice(i, 2);
  if (!(Number.isInteger(n) && n > 0)) throw new Error(`${flag} needs a positive integer`);
  return n;
};

const argv = process.argv.slice(2);
const count = own(argv, '--push-count', DEFAULT_PUSH_COUNT);
const size = own(argv, '--push-mib', DEFAULT_PUSH_MIB) * 2 ** 20;
const config = loadConfig(argv, process.env, 0);
await runServer(config, {
  name: 'comet-fsm attack fixture: huge-push',
  hooks: () => ({
    onMessage(_sid, data, session) {
      if (data !== HUGE_PUSH_MESSAGE) {
        session.push(data);
        return;
      }
      // Distinct strings, as distinct payloads would be (one string pushed 4 times costs once).
      for (let i = 0; i < count; i++) session.push(String.fromCharCode(97 + (i % 26)).repeat(size));
    },
  }),
});
