/**
 * Row 2: one session sends 64 KiB echo messages and never acks, so every answer repeats the whole
 * queue; once it holds N packets it keeps polling (ack 0) until the deadline.
 */
import { bigStringBody, codeOf, pollBody, SETUP, sidOf } from '../bodies.js';
import { mib, tally, tallyText, type AttackCase, type AttackContext, type Outcome } from '../case.js';
import { post } from '../raw.js';

/** One answer may take long to build and send (ms). */
const ANSWER_TIMEOUT_MS = 30_000;

export const unackedBig: AttackCase = {
  name: 'unacked-big',
  row: 2,
  summary: 'one session, N unacked 64 KiB echo packets (never acks), then polls with ack 0',
  target: 'echo',
  victim: 'echo',
  count: { what: 'packets', default: 300 },
  async run(ctx: AttackContext): Promise<Outcome> {
    const want = ctx.count ?? 300;
    // Answers are counted, not kept: they grow to N x 64 KiB.
    const conn = ctx.conn(0, 4096);
    const statuses: Record<string, number> = {};
    let accepted = 0;
    let received = 0;
    let largest = 0;
    let polls = 0;
    let sent = 0;
    const setup = await conn.request(post('/comet', SETUP), 10_000);
    const sid = sidOf(setup.body);
    if (sid === null) throw new Error(`setup answered ${setup.status}`);
    let rid = 0;
    let slowest = 0;
    try {
      while (!ctx.stopped) {
        const body = accepted < want ? bigStringBody(sid, ++rid, 0) : pollBody(sid, ++rid, 0);
        const t = performance.now();
        const r = await conn.request(post('/comet', body), ANSWER_TIMEOUT_MS);
        slowest = Math.max(slowest, performance.now() - t);
        tally(statuses, codeOf(r.status, r.body));
        received += r.bytes;
        largest = Math.max(largest, r.bytes);
        if (accepted < want) {
          sent += body.length;
          if (r.status === 200) accepted++;
          else rid--; // refused: the same rid again, as a client would
        } else {
          polls++;
        }
        if (r.status >= 400 && r.status < 500) break; // a 4xx would only come back again
        if (r.status !== 200) await ctx.sleep(100);
      }
    } catch (e) {
      if (!ctx.stopped) tally(statuses, e instanceof Error ? e.message : String(e));
    }
    return {
      summary: `${accepted} packets queued (${mib(sent)} sent), then ${polls} polls; ${mib(received)} received, largest answer ${mib(largest)}, slowest ${(slowest / 1000).toFixed(2)} s; answers: ${tallyText(statuses)}`,
      sessions: 1,
      ownPass: null,
      figures: { accepted, polls, sent_bytes: sent, received_bytes: received, largest_answer_bytes: largest, slowest_answer_ms: slowest, answers: tallyText(statuses) },
    };
  },
};
