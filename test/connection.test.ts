// The connection FSM, state x event, driven directly with a manual clock (no HTTP). The table
// itself is in fixtures/connection_table.ts: the gen_statem example runs the same cases.
import t, { type Test } from 'tap';
import { INACTIVITY, WAIT, startConnection, type Harness } from './fixtures/connection.js';
import { connectionTable } from './fixtures/connection_table.js';

connectionTable(t, startConnection);

// Settle what a timer put in the mailbox: the FSM handles it, and maybe stops.
async function drain(h: Harness): Promise<void> {
  for (let i = 0; i < 20 && h.alive(); i++) await new Promise((r) => setImmediate(r));
}

/** Alive one ms before `ms` from now, ended by the dietimer at `ms`. */
async function endsByInactivityIn(t: Test, h: Harness, ms: number): Promise<void> {
  h.clock.advance(ms - 1);
  await h.state();
  t.ok(h.alive(), 'one ms before inactivity from the answer: alive');
  h.clock.advance(1);
  await drain(h);
  t.notOk(h.alive(), 'inactivity ms after the answer: ended');
  t.same(h.ended, ['inactivity']);
}

// Issue 15: one timer per session, for whichever deadline counts (the held request's wait, else
// the dietimer's); a held poll used to keep two armed, about 140 bytes each.
void t.test('one timer per session: a held poll arms exactly one, and the dietimer still fires at its instant', async (t) => {
  void t.test('answered empty after wait: the session ends inactivity ms after the answer', async (t) => {
    const h = await startConnection();
    t.teardown(() => h.stop());
    t.equal(h.clock.pendingCount, 1, 'a new session: the dietimer alone');
    h.clock.advance(500);
    const answer = h.request(1);
    t.match(await h.state(), { name: 'have_request', held: true });
    t.equal(h.clock.pendingCount, 1, 'a held poll: one timer armed, not a wait timer and a dietimer');
    h.clock.advance(WAIT - 1);
    t.match(await h.state(), { name: 'have_request' }, 'held until its wait has passed');
    h.clock.advance(1);
    t.same(await answer, { kind: 'packets', rid: 1, packets: [] }, 'answered empty at since + wait');
    t.equal(h.clock.pendingCount, 1, 'answered: one timer, the dietimer');
    await endsByInactivityIn(t, h, INACTIVITY);
  });

  void t.test('answered by a packet before its wait: the timer armed for the wait fires early and sleeps again', async (t) => {
    const h = await startConnection();
    t.teardown(() => h.stop());
    const answer = h.request(1);
    await h.state();
    h.clock.advance(600);
    await h.packet('p');
    t.match(await answer, { kind: 'packets', rid: 1, packets: [{ seq: 1 }] });
    t.equal(h.clock.pendingCount, 1, 'one timer, due at the old wait deadline, before the dietimer\'s');
    h.clock.advance(WAIT - 600);
    await h.state();
    t.equal(h.clock.pendingCount, 1, 'it fired early and was armed again for the dietimer');
    await endsByInactivityIn(t, h, INACTIVITY - WAIT + 600);
  });
});
