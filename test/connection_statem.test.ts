// The post's connection FSM written as a gen_statem (examples/connection_statem.ts) passes the same
// state x event table as the real gen_fsm (fixtures/connection_table.ts): the mapping from the
// deprecated behaviour to the modern one changes how the timers are kept, not what a client sees.
// Below the table, the instants where the two keep their timers differently, run on both.
import t from 'tap';
import { INACTIVITY, WAIT, startConnection } from './fixtures/connection.js';
import { connectionTable, type StartHarness, type TableHarness } from './fixtures/connection_table.js';
import { startConnectionStatem } from './fixtures/connection_statem.js';

connectionTable(t, startConnectionStatem);

async function ended(h: TableHarness): Promise<boolean> {
  for (let i = 0; i < 20 && h.alive(); i++) await new Promise((r) => setImmediate(r));
  return !h.alive();
}

const FSMS: readonly (readonly [string, StartHarness])[] = [['gen_fsm', startConnection], ['gen_statem', startConnectionStatem]];

for (const [name, start] of FSMS) {
  void t.test(`same instants (${name})`, async (t) => {
    void t.test('what happens if a newer request replaces the held one: it is answered WAIT after its own arrival, not the older one\'s', async (t) => {
      const h = await start();
      t.teardown(() => h.stop());
      void h.request(1);
      await h.state();
      h.clock.advance(WAIT - 100);
      let answered = false;
      const second = h.request(2).then((r) => { answered = true; return r; });
      await h.state();
      h.clock.advance(100); // the first request's deadline
      await h.state();
      t.notOk(answered, 'not at the older deadline');
      h.clock.advance(WAIT - 100);
      t.same(await second, { kind: 'packets', rid: 2, packets: [] });
    });
    void t.test('what happens if a request in have_packet is answered at once: the inactivity count restarts from it', async (t) => {
      const h = await start();
      t.teardown(() => h.stop());
      await h.packet('p');
      h.clock.advance(INACTIVITY - 10);
      await h.request(1); // answered at once with p, not acked: still have_packet
      h.clock.advance(10);
      await h.state();
      t.ok(h.alive(), 'INACTIVITY after the start: alive, the request restarted the count');
      h.clock.advance(INACTIVITY - 10);
      t.ok(await ended(h), 'INACTIVITY after the request: ended');
      t.same(h.ended, ['inactivity']);
    });
    void t.test('what happens if a packet moves waiting to have_packet: the inactivity count does not restart', async (t) => {
      const h = await start();
      t.teardown(() => h.stop());
      h.clock.advance(INACTIVITY - 1);
      await h.packet('p');
      h.clock.advance(1);
      t.ok(await ended(h), 'INACTIVITY after the start: ended');
      t.same(h.ended, ['inactivity']);
    });
  });
}
