#!/usr/bin/env node
/**
 * An attack fixture, for `npm run attack -- huge-push` only: the echo server, except that the
 * message "huge-push" makes `onMessage` push `--push-count` packets (default 4) of `--push-mib` MiB
 * (default 150) each, distinct strings, in place, one after the other. Every other message is
 * echoed, so the victim works as against the echo server. Same flags and environment as
 * bin/echo.ts otherwise.
 */
import { isCometError } from '../../lib/index.js';
import { runServer } from '../../bin/run_server.js';
import { loadConfig } from '../../bin/server_config.js';
import { DEFAULT_PUSH_COUNT, DEFAULT_PUSH_MIB, HUGE_PUSH_MESSAGE } from './bodies.js';

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
      // Distinct strings, as distinct payloads would be (one string pushed 4 times costs once), and
      // flat: `repeat` makes a tree of concatenations that costs almost nothing until something
      // reads it, and an application's real payload is in memory. Reading one character in the
      // middle makes V8 flatten it. This is the application's memory, made before the library
      // sees it: each string is refused at push (too large for one response) and the next made.
      for (let i = 0; i < count; i++) {
        const payload = String.fromCharCode(97 + (i % 26)).repeat(size);
        if (payload.charCodeAt(size >> 1) !== 97 + (i % 26)) throw new Error('unreachable');
        try {
          session.push(payload);
        } catch (err) {
          if (!isCometError(err) || err.code !== 'ERR_COMET_PACKET_TOO_LARGE') throw err;
        }
      }
    },
  }),
});
