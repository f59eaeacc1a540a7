// GET /metrics (Prometheus text) and GET /healthz, as a scraper and a load balancer see them.
import t from 'tap';
import { Registry } from 'prom-client';
import { post, setup, startServer, waitFor } from './fixtures/http.js';

const metric = (text: string, name: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
};

void t.test('metrics follow sessions, held polls, messages and packets', async (t) => {
  const ref: { comet?: import('../lib/index.js').CometServer } = {};
  const s = await startServer(t, { onMessage: (sid, d) => { void ref.comet?.handlePacket(sid, d); } });
  ref.comet = s.comet;
  const sid = await setup(s.url);
  await post(s.url, { sid, rid: 1, messages: ['a', 'b'] });
  const held = post(s.url, { sid, rid: 2, ack: 0 }); // gets the two echoes at once (unacked)
  await held;
  const text = await (await fetch(`${s.base}/metrics`)).text();
  t.equal(metric(text, 'comet_sessions'), 1);
  t.equal(metric(text, 'comet_messages_in_total'), 2);
  t.equal(metric(text, 'comet_packets_out_total'), 2);
  t.equal(metric(text, 'comet_packets_queued'), 2, 'not acked yet');
  t.match(text, /comet_http_requests_total\{status="200"\} 3/);
  void post(s.url, { sid, rid: 3, ack: 2 });          // acks both, is held
  await new Promise((r) => setTimeout(r, 50));
  const after = await (await fetch(`${s.base}/metrics`)).text();
  t.equal(metric(after, 'comet_packets_queued'), 0);
  t.equal(metric(after, 'comet_polls_held'), 1);
});

void t.test('a response counts once flushed: not a held poll whose socket died first', async (t) => {
  const s = await startServer(t);
  const sid = await setup(s.url);
  const held = post(s.url, { sid, rid: 1 }).catch(() => 'reset');
  await waitFor(() => s.comet.heldCount() === 1, 'the poll is held');
  t.equal(s.comet.dropHeldPoll(sid), 1);
  t.equal(await held, 'reset');
  await waitFor(() => s.comet.heldCount() === 0, 'the poll is gone');
  const text = await (await fetch(`${s.base}/metrics`)).text();
  t.match(text, /comet_http_requests_total\{status="200"\} 1\n/, 'the setup, not the dropped poll');
  t.notMatch(text, /comet_http_requests_total\{status="(?!200)/, 'no other status');
  // Answered errors count too (405 here), as every response of the endpoint does.
  t.equal((await fetch(s.url, { method: 'PUT' })).status, 405);
  t.match(await (await fetch(`${s.base}/metrics`)).text(), /comet_http_requests_total\{status="405"\} 1\n/);
});

void t.test('an embedder passes its own registry', async (t) => {
  const registry = new Registry();
  const s = await startServer(t, { metrics: { registry } });
  t.equal(s.comet.registry, registry);
  await setup(s.url);
  t.match(await registry.metrics(), /comet_sessions 1/);
});

void t.test('healthz: 200 while serving, 503 once closing', async (t) => {
  const s = await startServer(t);
  const ok = await fetch(`${s.base}/healthz`);
  t.equal(ok.status, 200);
  t.same(await ok.json(), { status: 'ok' });
  const closing = s.comet.close();
  const during = await fetch(`${s.base}/healthz`).then((r) => r.status, () => 'refused');
  t.ok(during === 503 || during === 'refused', `closing: ${String(during)}`);
  await closing;
});

void t.test('metrics: false serves no /metrics', async (t) => {
  const s = await startServer(t, { metrics: false });
  t.equal((await fetch(`${s.base}/metrics`)).status, 404);
});
