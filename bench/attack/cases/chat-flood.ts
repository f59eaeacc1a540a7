/**
 * Row 5: the chat demo with N idle sessions (set up from 127.0.0.3, then silent: the queue of each
 * fills and stays full), then one 64 KiB request of chat lines from 127.0.0.2. What the log writes
 * is the figure (the orchestrator counts it); this case waits until the log goes quiet.
 */
import { chatFloodBody, codeOf, SETUP, sidOf } from '../bodies.js';
import { tally, tallyText, type AttackCase, type AttackContext, type Outcome } from '../case.js';
import { post } from '../raw.js';

/** Setups of the idle sessions in flight at once. */
const SETUP_CONNS = 8;
/** The flood is over when the log has not grown for this long (ms). */
const QUIET_MS = 3_000;

export const chatFlood: AttackCase = {
  name: 'chat-flood',
  row: 5,
  summary: 'one 64 KiB request of ~2,700 chat lines to the chat demo with N idle sessions (from 127.0.0.3)',
  target: 'chat',
  victim: 'chat',
  count: { what: 'idle sessions', default: 200 },
  async run(ctx: AttackContext): Promise<Outcome> {
    const want = ctx.count ?? 200;
    const statuses: Record<string, number> = {};
    let idle = 0;
    let next = 0;
    await Promise.all(
      Array.from({ length: SETUP_CONNS }, async () => {
        const c = ctx.conn(1);
        while (next < want && !ctx.stopped) {
          next++;
          const r = await c.request(post('/comet', SETUP), 10_000);
          if (sidOf(r.body) !== null) idle++;
          else tally(statuses, `setup ${codeOf(r.status, r.body)}`);
        }
      }),
    );
    const conn = ctx.conn(0);
    const setup = await conn.request(post('/comet', SETUP), 10_000);
    const sid = sidOf(setup.body);
    if (sid === null) throw new Error(`setup answered ${setup.status}`);
    const { body, lines } = chatFloodBody(sid);
    const before = ctx.logBytes();
    const r = await conn.request(post('/comet', body), 60_000);
    tally(statuses, `flood ${codeOf(r.status, r.body)}`);
    let size = ctx.logBytes();
    let since = performance.now();
    while (!ctx.stopped && performance.now() - since < QUIET_MS) {
      await ctx.sleep(250);
      if (ctx.logBytes() !== size) {
        size = ctx.logBytes();
        since = performance.now();
      }
    }
    const amplification = (ctx.logBytes() - before) / body.length;
    return {
      summary: `${idle} idle sessions; one request of ${lines} lines (${(body.length / 1024).toFixed(0)} KiB): ${tallyText(statuses)}; log ${Math.round(amplification)}x the request`,
      sessions: idle + 1,
      ownPass: null,
      figures: { idle_sessions: idle, lines, request_bytes: body.length, log_amplification: amplification, answers: tallyText(statuses) },
    };
  },
};
