// Packet data is checked when it is pushed: a packet that cannot be JSON-encoded would be resent
// (and fail) on every later response of its session.
import t from 'tap';
import { post, setup, startServer } from './fixtures/http.js';

void t.test('handlePacket and broadcast refuse data JSON cannot encode, and the session goes on', async (t) => {
  const s = await startServer(t);
  const sid = await setup(s.url);
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  for (const bad of [10n, cyclic, undefined, () => 1]) {
    await t.rejects(s.comet.handlePacket(sid, bad), { code: 'bad_request' });
    await t.rejects(s.comet.broadcast(bad), { code: 'bad_request' });
  }
  await s.comet.handlePacket(sid, { ok: true });
  const r = await post(s.url, { sid, rid: 1 });
  t.same(r.body, { rid: 1, packets: [{ seq: 1, data: { ok: true } }] }, 'seq 1: refused data used no seq');
});
