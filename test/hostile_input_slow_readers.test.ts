// Connections that do not read (issue 11 item 4). A client that asks for a big response and never
// reads it pins the response's bytes in the server; before, nothing timed such a socket out and
// one session could have its 12 MiB queue written to hundreds of them. Now a response not flushed
// within `writeTimeout` has its socket destroyed (its packets stay queued: a later request gets
// them all), and a session has at most `maxConnectionsPerSession` requests in flight (503 beyond).
// Raw sockets that stop reading, on 127.0.0.1; the write timeout runs on a ManualClock.
import type net from 'node:net';
import t from 'tap';
import type { Test } from 'tap';
import { DEFAULT_MAX_CONNECTIONS_PER_SESSION, DEFAULT_WRITE_TIMEOUT_MS } from '../lib/index.js';
import { ManualClock } from '../lib/otp/clock.js';
import { packetsOf, post, setup, startServer, waitFor, type Started } from './fixtures/http.js';
import { RawSocket, expectError, requestHead } from './fixtures/raw_socket.js';

/** 1,000 packets of 16 KiB: a 16 MiB response, far more than loopback's socket buffers hold. */
const PACKETS = 1000;
const PACKET = 'x'.repeat(16 * 1024);
const MIB = 1024 * 1024;

async function bigSession(t: Test): Promise<{ s: Started; clock: ManualClock; sid: string; sockets: net.Socket[] }> {
  const clock = new ManualClock();
  // Budgets wide enough for four unread 16 MiB responses: this file is about the write timeout and
  // the connections per session, not the byte budgets (hostile_input_bytes.test.ts has those).
  const s = await startServer(t, {
    clock, wait: 600_000, inactivity: 600_000, maxQueue: PACKETS + 1,
    maxResponseBytes: 32 * MIB, maxSessionBytes: 256 * MIB, maxServerBytes: 512 * MIB,
  });
  const sockets: net.Socket[] = [];
  s.comet.httpServer?.on('connection', (socket: net.Socket) => sockets.push(socket));
  const sid = await setup(s.url);
  for (let i = 0; i < PACKETS; i++) await s.comet.handlePacket(sid, PACKET);
  return { s, clock, sid, sockets };
}

/** A connection that sends a request for `sid` and never reads a byte of the answer. */
async function nonReader(t: Test, port: number, sid: string, rid: number): Promise<RawSocket> {
  const conn = await RawSocket.open(t, port);
  conn.socket.pause();
  const body = JSON.stringify({ sid, rid, ack: 0 });
  await conn.write(requestHead('POST', '/comet', { 'Content-Type': 'application/json', 'Content-Length': String(body.length) }) + body);
  return conn;
}

/** Server-side sockets holding response bytes the client has not taken. */
const stuck = (sockets: readonly net.Socket[]): net.Socket[] => sockets.filter((s) => !s.destroyed && s.writableLength > 0);

void t.test('a response not flushed within writeTimeout: its socket is destroyed, its packets stay queued', async (t) => {
  const { s, clock, sid, sockets } = await bigSession(t);
  await nonReader(t, s.port, sid, 1);
  await waitFor(() => stuck(sockets).length === 1, 'the 16 MiB response stuck behind a client that does not read');

  clock.advance(DEFAULT_WRITE_TIMEOUT_MS - 1);
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(stuck(sockets).length, 1, 'just before the write timeout, the socket is still there');
  clock.advance(1);
  await waitFor(() => stuck(sockets).length === 0, 'the socket destroyed at the write timeout');

  const r = await post(s.url, { sid, rid: 2, ack: 0 });
  const packets = packetsOf(r);
  t.equal(packets.length, PACKETS, 'a client that reads gets every packet: nothing was lost');
  t.same([packets[0]?.seq, packets[PACKETS - 1]?.seq], [1, PACKETS], 'from seq 1 to the last');
});

void t.test(`one session, many connections that do not read: at most ${DEFAULT_MAX_CONNECTIONS_PER_SESSION} in flight, 503 beyond`, async (t) => {
  const { s, clock, sid, sockets } = await bigSession(t);
  // rids 1..4, each a request the server answers at once with the whole queue.
  for (let rid = 1; rid <= DEFAULT_MAX_CONNECTIONS_PER_SESSION; rid++) await nonReader(t, s.port, sid, rid);
  await waitFor(() => stuck(sockets).length === DEFAULT_MAX_CONNECTIONS_PER_SESSION, 'four responses stuck');

  const refused: RawSocket[] = [];
  for (let i = 0; i < 20; i++) {
    const conn = await RawSocket.open(t, s.port);
    const body = JSON.stringify({ sid, rid: 5, ack: 0 });
    await conn.write(requestHead('POST', '/comet', { 'Content-Type': 'application/json', 'Content-Length': String(body.length) }) + body);
    refused.push(conn);
  }
  for (const conn of refused) expectError(t, await conn.readResponse(), 503, 'overloaded', 'a fifth request in flight');
  t.equal(stuck(sockets).length, DEFAULT_MAX_CONNECTIONS_PER_SESSION, 'the big response is written to four sockets, not 24');

  const other = await setup(s.url);
  t.equal((await post(s.url, { type: 'terminate', sid: other, rid: 1 })).status, 200, 'other sessions are not affected');

  clock.advance(DEFAULT_WRITE_TIMEOUT_MS);
  await waitFor(() => stuck(sockets).length === 0, 'the four stuck sockets destroyed at the write timeout');
  const r = await post(s.url, { sid, rid: 5, ack: 0 });
  t.equal(packetsOf(r).length, PACKETS, 'then the session is served again, every packet still there');
});
