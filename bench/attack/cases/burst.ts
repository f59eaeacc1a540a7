/**
 * Row 4: `CometClient` sends N messages in one burst to the echo server; every accepted message
 * must come back once, in order.
 */
import { CometClient } from '../../../lib/client/index.js';
import { boundFetch } from '../bound-fetch.js';
import { tally, tallyText, type AttackCase, type AttackContext, type Outcome } from '../case.js';

/** After the last send settled, wait this long without a new echo before counting (ms). */
const QUIET_MS = 5_000;

export const burst: AttackCase = {
  name: 'burst-3000',
  row: 4,
  summary: 'CometClient sends N messages in a burst to the echo server; echoes counted (each once, in order)',
  target: 'echo',
  victim: 'echo',
  count: { what: 'messages', default: 3_000 },
  async run(ctx: AttackContext): Promise<Outcome> {
    const want = ctx.count ?? 3_000;
    const { fetch, close } = boundFetch(ctx.address(0));
    ctx.track({ destroy: close });
    const client = new CometClient(`http://${ctx.host}:${ctx.port}/comet`, { fetch, reconnect: false });
    const echoes: string[] = [];
    let lastEcho = performance.now();
    client.on('message', ({ data }) => {
      echoes.push(String(data));
      lastEcho = performance.now();
    });
    const closes: Record<string, number> = {};
    client.on('close', ({ reason }) => tally(closes, reason));
    await client.connect();
    let accepted = 0;
    const rejected: Record<string, number> = {};
    let settled = 0;
    const sends = Array.from({ length: want }, (_, i) =>
      client.send(`m${i}`).then(
        () => {
          accepted++;
          settled++;
        },
        (e: unknown) => {
          tally(rejected, e instanceof Error && 'code' in e ? String(e.code) : 'error');
          settled++;
        },
      ),
    );
    void Promise.all(sends);
    while (!ctx.stopped && (settled < want || (echoes.length < accepted && performance.now() - lastEcho < QUIET_MS))) {
      await ctx.sleep(50);
    }
    await Promise.race([client.close(), ctx.sleep(3_000)]);
    const seen = new Set<string>();
    let dup = 0;
    let outOfOrder = 0;
    let prev = -1;
    for (const e of echoes) {
      if (seen.has(e)) dup++;
      seen.add(e);
      const n = Number(e.slice(1));
      if (n < prev) outOfOrder++;
      prev = n;
    }
    const pass = seen.size === want && dup === 0 && outOfOrder === 0;
    return {
      summary: `${accepted}/${want} sends resolved (rejected: ${tallyText(rejected)}), ${seen.size} echoes back, ${dup} duplicated, ${outOfOrder} out of order${Object.keys(closes).length > 0 ? `; client closed: ${tallyText(closes)}` : ''}`,
      sessions: 1,
      ownPass: pass,
      figures: { sent: want, accepted, echoes: seen.size, duplicated: dup, out_of_order: outOfOrder, rejected: tallyText(rejected), unsettled: want - settled },
    };
  },
};
