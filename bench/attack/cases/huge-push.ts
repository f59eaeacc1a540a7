/**
 * Row 7: against the fixture server (bench/attack/huge-push-server.ts), one message makes
 * `onMessage` push 4 x 150 MiB; the attacker then polls as a client would, re-sending the same rid
 * after each 5xx with a capped backoff, until the deadline.
 */
import { codeOf, DEFAULT_PUSH_COUNT, DEFAULT_PUSH_MIB, HUGE_PUSH_MESSAGE, messagesBody, pollBody, SETUP, sidOf } from '../bodies.js';
import { mib, tally, tallyText, type AttackCase, type AttackContext, type Outcome } from '../case.js';
import { AttackError, post } from '../raw.js';

/** Retry delays after a 5xx, as CometClient's: start, cap (ms). */
const RETRY_BASE_MS = 250;
const RETRY_CAP_MS = 2_000;
/** One answer may freeze the server for seconds (ms). */
const ANSWER_TIMEOUT_MS = 30_000;

export const hugePush: AttackCase = {
  name: 'huge-push',
  row: 7,
  summary: 'onMessage pushes 4 x 150 MiB (the attack fixture server); the client retries for ever',
  target: 'huge-push',
  victim: 'echo',
  count: null,
  async run(ctx: AttackContext): Promise<Outcome> {
    // Answers are counted, not kept: one could be 600 MiB.
    const conn = ctx.conn(0, 4096);
    const statuses: Record<string, number> = {};
    const setup = await conn.request(post('/comet', SETUP), 10_000);
    const sid = sidOf(setup.body);
    if (sid === null) throw new Error(`setup answered ${setup.status}`);
    let rid = 1;
    let body = messagesBody(sid, rid, 0, [HUGE_PUSH_MESSAGE]);
    let delay = RETRY_BASE_MS;
    let slowest = 0;
    let received = 0;
    let tries = 0;
    while (!ctx.stopped) {
      const t = performance.now();
      tries++;
      let status = 0;
      try {
        const r = await conn.request(post('/comet', body), ANSWER_TIMEOUT_MS);
        status = r.status;
        received += r.bytes;
        tally(statuses, codeOf(r.status, r.body));
      } catch (e) {
        if (ctx.stopped) break;
        tally(statuses, e instanceof AttackError ? e.code : String(e));
      }
      slowest = Math.max(slowest, performance.now() - t);
      if (status === 200) {
        // Got it: acknowledge nothing (the answer was not parsed) and poll on with the next rid.
        body = pollBody(sid, ++rid, 0);
        delay = RETRY_BASE_MS;
      } else if (status >= 400 && status < 500) {
        break;
      } else {
        await ctx.sleep(delay);
        delay = Math.min(RETRY_CAP_MS, delay * 2);
      }
    }
    // What the application itself allocates per message, outside the library's budgets: the
    // fixture's defaults (the runner passes it no --push-* flag).
    const appMiB = DEFAULT_PUSH_COUNT * DEFAULT_PUSH_MIB;
    return {
      summary: `${tries} tries: ${tallyText(statuses)}; ${mib(received)} received; slowest answer ${(slowest / 1000).toFixed(1)} s; onMessage made ${DEFAULT_PUSH_COUNT} x ${DEFAULT_PUSH_MIB} MiB per try (${appMiB} MiB of its own, one string at a time), each refused at push`,
      sessions: 1,
      ownPass: null,
      figures: { tries, received_bytes: received, slowest_answer_ms: slowest, answers: tallyText(statuses), app_mib_per_try: appMiB, app_largest_mib: DEFAULT_PUSH_MIB },
    };
  },
};
