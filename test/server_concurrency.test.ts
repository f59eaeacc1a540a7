// 200 concurrent sessions exchanging echoes over real HTTP, each with a poller and a sender on
// two connections: no loss, no duplicate, no packet in the wrong session.
import t from 'tap';
import { MANY_CLIENTS_ON_LOOPBACK, WireClient, startServer } from './fixtures/http.js';

const SESSIONS = 200;
const SENDS = 3;
const PER_SEND = 2;
const EXPECTED = SENDS * PER_SEND;
/** Bound on the poller's loop: far more polls than a correct server needs. */
const MAX_POLLS = 100;
/** The poller gives up after this many empty polls (each held `wait` ms) once the sender is done:
 *  a server that lost or misrouted an echo then fails the test in seconds, not at the timeout. */
const EMPTY_POLLS_AFTER_SEND = 2;

interface Tagged {
  readonly sid: string;
  readonly n: number;
  readonly k: number;
}

async function converse(url: string, n: number): Promise<{ c: WireClient; sent: Tagged[]; errors: string[] }> {
  const c = await WireClient.open(url);
  const sent: Tagged[] = [];
  const errors: string[] = [];
  const check = (status: number, text: string): void => {
    if (status !== 200) errors.push(`${status} ${text}`);
  };
  let senderDone = false;
  const poller = async (): Promise<void> => {
    let empty = 0;
    for (let i = 0; i < MAX_POLLS && c.seqs.length < EXPECTED && empty < EMPTY_POLLS_AFTER_SEND; i++) {
      const before = c.seqs.length;
      const r = await c.request();
      check(r.status, r.text);
      if (senderDone && c.seqs.length === before) empty++;
    }
  };
  const sender = async (): Promise<void> => {
    for (let s = 0; s < SENDS; s++) {
      const messages: Tagged[] = [];
      for (let j = 0; j < PER_SEND; j++) messages.push({ sid: c.sid, n, k: s * PER_SEND + j });
      sent.push(...messages);
      const r = await c.request({ messages });
      check(r.status, r.text);
    }
    senderDone = true;
  };
  await Promise.all([poller(), sender()]);
  return { c, sent, errors };
}

void t.test(`${SESSIONS} concurrent sessions exchanging echoes`, async (t) => {
  const { url, comet, seen } = await startServer(t, { ...MANY_CLIENTS_ON_LOOPBACK, wait: 1000, inactivity: 10_000 }, { echo: true });
  const results = await Promise.all(Array.from({ length: SESSIONS }, (_, n) => converse(url, n)));

  t.equal(new Set(results.map((r) => r.c.sid)).size, SESSIONS, 'every session has its own sid');
  t.equal(comet.sessions().length, SESSIONS, 'all sessions alive');
  let lost = 0;
  let duplicated = 0;
  let misplaced = 0;
  let errors = 0;
  for (const { c, sent, errors: e } of results) {
    errors += e.length;
    const got = c.data as Tagged[];
    for (const d of got) if (d.sid !== c.sid) misplaced++;
    const keys = got.map((d) => `${d.sid}/${d.k}`);
    duplicated += keys.length - new Set(keys).size;
    for (const s of sent) if (!keys.includes(`${s.sid}/${s.k}`)) lost++;
    if (got.length === EXPECTED) t.same(got, sent, `session ${sent[0]?.n ?? '?'}: echoes in order`, { diagnostic: false });
    else t.fail(`session ${c.sid}: got ${got.length} of ${EXPECTED}`);
  }
  t.equal(errors, 0, 'every request answered 200');
  t.equal(lost, 0, 'no loss');
  t.equal(duplicated, 0, 'no duplicate');
  t.equal(misplaced, 0, 'no packet in the wrong session');

  // Server side: every message delivered to the application once, to its own session.
  t.equal(seen.messages.length, SESSIONS * EXPECTED, 'onMessage once per message');
  t.equal(seen.messages.filter((m) => (m.data as Tagged).sid !== m.sid).length, 0, 'onMessage with the right sid');

  const ends = await Promise.all(results.map(({ c }) => c.terminate()));
  t.equal(ends.filter((r) => r.status === 200).length, SESSIONS, 'every session terminates');
  t.same(comet.sessions(), []);
});
