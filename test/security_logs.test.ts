// Logs a client cannot amplify and that never carry a credential. The chat demo's server with
// 200 idle sessions gets one 64 KiB request of 2,000 lines (1,700 chat lines, which fill every
// idle session's queue, and 300 that are not chat requests): before, every refused broadcast and
// every ignored line wrote a line with the full sid (about 59 MiB for this input). Now the
// warnings of one kind are a few lines and a count per interval, and no line holds a sid.
import t from 'tap';
import type { Test } from 'tap';
import type { CometServer, Logger, Sid } from '../lib/index.js';
import { sidTag, throttleLogger } from '../lib/index.js';
import { ManualClock } from '../lib/otp/clock.js';
import { isOtpError } from '../lib/otp/errors.js';
import { startChatServer } from '../examples/chat/server.js';
import { MANY_CLIENTS_ON_LOOPBACK, post, setup } from './fixtures/http.js';

const IDLE_SESSIONS = 200;
/** Bytes of log this whole attack may write: far below the input (64 KiB), let alone 59 MiB. */
const LOG_BOUND_BYTES = 32 * 1024;

/** A logger that keeps each line as pino would write it (one JSON object per line). */
function recordingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const at = (level: string) => (obj: object, msg?: string): void => {
    lines.push(JSON.stringify({ level, time: Date.now(), ...obj, msg }));
  };
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines };
}

async function chat(t: Test, logger: Logger): Promise<{ url: string; comet: CometServer }> {
  const server = await startChatServer({ ...MANY_CLIENTS_ON_LOOPBACK, logger, maxQueue: 1000, wait: 60_000, inactivity: 60_000 });
  t.teardown(() => server.close());
  return { url: `${server.url}comet`, comet: server.comet };
}

void t.test('a chat flood against 200 idle sessions: a bounded log, no full sid in any line', async (t) => {
  const { logger, lines } = recordingLogger();
  const { url, comet } = await chat(t, logger);
  const sids: Sid[] = [];
  for (let i = 0; i < IDLE_SESSIONS; i++) sids.push(await setup(url));
  const attacker = await setup(url);
  sids.push(attacker);

  const messages: unknown[] = [];
  for (let i = 0; i < 1700; i++) messages.push({ type: 'say', nick: 'a', text: 'x' });
  for (let i = 0; i < 300; i++) messages.push(0);
  const body = JSON.stringify({ sid: attacker, rid: 1, ack: 0, messages });
  t.ok(body.length <= 65_536 && body.length > 60_000, `one request of ${body.length} bytes`);
  const r = await post(url, { sid: attacker, rid: 1, ack: 0, messages });
  t.equal(r.status, 200, 'the flood is accepted');
  // A broadcast is a cast into every session's mailbox: a push sent after it is handled after
  // it, so once every push is answered, every broadcast has been.
  // (A push refused for its full queue answers too; one that timed out on a busy machine is
  // asked again, until every mailbox has been worked through.)
  let pending = sids;
  for (let round = 0; round < 20 && pending.length > 0; round++) {
    const results = await Promise.allSettled(pending.map((sid) => comet.handlePacket(sid, 'sync')));
    pending = pending.filter((_, i) => {
      const r = results[i];
      return r?.status === 'rejected' && isOtpError(r.reason) && r.reason.code === 'ERR_OTP_TIMEOUT';
    });
  }
  const logged = (): number => lines.reduce((n, l) => n + l.length + 1, 0);
  const queueFull = lines.filter((l) => l.includes('"packet refused: queue full"'));
  t.ok(queueFull.length >= 1, 'the refused broadcasts are logged');
  t.ok(queueFull.length <= 6, `at most a burst of them as lines (${queueFull.length}), the rest counted`);
  const refused = lines.filter((l) => l.includes('"chat: refused a request"'));
  t.ok(refused.length >= 1 && refused.length <= 6, `the refused requests too (${refused.length})`);

  await comet.close();
  t.ok(lines.some((l) => /"repeated":\d{5,}/.test(l)), 'on close, the count of the refusals not written is (hundreds of thousands)');
  if (logged() > LOG_BOUND_BYTES) t.comment(lines.slice(0, 20).join("\n"));
  t.ok(logged() <= LOG_BOUND_BYTES, `the log stays under ${LOG_BOUND_BYTES} bytes (${logged()})`);
  const leaks = lines.filter((line) => sids.some((sid) => line.includes(sid)));
  t.same(leaks.slice(0, 3), [], `no log line carries a full sid (${leaks.length} do)`);
  t.ok(lines.some((l) => sids.some((sid) => l.includes(`"session":"${sidTag(sid)}"`))), 'a session is named by its tag');
});

void t.test('throttleLogger: a burst of lines, then one line per interval with the count', (t) => {
  const { logger, lines } = recordingLogger();
  const clock = new ManualClock();
  const log = throttleLogger(logger, { clock, intervalMs: 1000, burst: 2 });
  for (let i = 0; i < 1000; i++) log.warn({ n: i }, 'queue full');
  log.warn({}, 'another kind');
  log.info({}, 'info is not throttled');
  log.info({}, 'info is not throttled');
  t.equal(lines.length, 5, 'two of the kind, one of another, every info line');
  clock.advance(1000);
  t.equal(lines.length, 6, 'after the interval, one line more');
  t.match(JSON.parse(lines[5] ?? '{}'), { msg: 'queue full (repeated)', repeated: 998, n: 999 }, 'with the count and the last repeat');
  for (let i = 0; i < 10; i++) log.warn({ n: i }, 'queue full');
  t.equal(lines.length, 6, 'a flood that goes on is only counted');
  clock.advance(1000);
  t.match(JSON.parse(lines[6] ?? '{}'), { repeated: 10 }, 'one line per interval');
  clock.advance(1000);
  t.equal(lines.length, 7, 'a quiet interval writes nothing');
  log.warn({}, 'queue full');
  t.equal(lines.length, 8, 'and the next one is written at once');
  log.warn({}, 'queue full');
  log.warn({}, 'queue full');
  log.flush();
  t.match(JSON.parse(lines[lines.length - 1] ?? '{}'), { repeated: 1 }, 'flush writes the pending count');
  t.equal(clock.pendingCount, 0, 'and stops its timers');
  t.end();
});

void t.test('a session FSM that crashes: its crash report names it by its tag, never by its sid', async (t) => {
  // The FSM is registered as `session:<sid>` (the post's name) and a pid prints as its name
  // unless it has a label: the connection's label keeps the sid out of the OTP layer's reports.
  const { logger, lines } = recordingLogger();
  const { createCometServer } = await import('../lib/index.js');
  const comet = await createCometServer({ logger, fault: (_sid, event) => event === 'packet' });
  const { port } = await comet.listen(0, '127.0.0.1');
  t.teardown(() => comet.close());
  const sid = await setup(`http://127.0.0.1:${port}/comet`);
  await comet.handlePacket(sid, 'crash').catch(() => undefined);
  await comet.close();
  const crash = lines.filter((l) => l.includes(`session:${sidTag(sid)}`));
  t.ok(crash.length >= 1, `the crash is reported under session:<tag> (${crash.length} lines)`);
  t.same(lines.filter((l) => l.includes(sid)), [], 'no line carries the sid');
});
