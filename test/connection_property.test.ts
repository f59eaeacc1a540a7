// Property test of the connection FSM: random sequences of client requests (fresh, retransmitted,
// out of order), lost responses, dead sockets, application packets and clock moves, run against the
// real gen_fsm (the harness, a ManualClock, no HTTP) beside the reference model and simulated client
// of fixtures/connection_model.ts. Every step compares replies, state and delivered messages with the
// model and checks the invariants; the end checks what the client and the application received.
// The state x event table lives in connection.test.ts; this file looks for the sequences it misses.
import { isDeepStrictEqual } from 'node:util';
import t from 'tap';
import fc from 'fast-check';
import { INACTIVITY, WAIT, startConnection, type Harness, type Outcome } from './fixtures/connection.js';
import {
  ConnectionModel, MAX_OUTSTANDING, SimClient, expectedMessages, type ModelEvent, type ModelReply, type SentBody,
} from './fixtures/connection_model.js';
import { demonitor, getState, monitor, type MonitorRef } from '../lib/otp/proc_lib.js';
import type { ConnectionData, ConnectionState, PacketOutcome } from '../lib/comet/connection.js';
import { RID_WINDOW } from '../lib/comet/inbox.js';

// Enough runs and length to reach the rare interleavings (a race, a lost response carrying packets,
// an out-of-order pair split by a timeout) every time, while the file stays well under 20 s.
const NUM_RUNS = 200;
const MAX_COMMANDS = 40;

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

type Cmd =
  /** A request with the next rid (or the rid an out-of-order send skipped). */
  | { readonly kind: 'send'; readonly messages: number; readonly withAck: boolean }
  /** Rid n+1 now; n goes with the next `send` (it took the other connection). */
  | { readonly kind: 'outOfOrder'; readonly messages: number; readonly withAck: boolean }
  /** An earlier rid again, same messages; with the ack it first carried, or the current one. */
  | { readonly kind: 'retransmit'; readonly pick: number; readonly freshAck: boolean }
  | { readonly kind: 'packet' }
  /** The held request's socket dies: `request_gone`; the client sees an error, never a response. */
  | { readonly kind: 'gone' }
  /** A `request_gone` for a request answered long ago: must not touch anything. */
  | { readonly kind: 'goneLate'; readonly pick: number }
  /** The held request's response will be dropped by a proxy; the client waits on. */
  | { readonly kind: 'loseHeld' }
  /** The next request's response will be dropped by a proxy. */
  | { readonly kind: 'loseNext' }
  | { readonly kind: 'advance'; readonly ms: number }
  /** A request reaches the mailbox just before a timer due in the same clock move fires. */
  | { readonly kind: 'raceSend'; readonly messages: number; readonly ms: number }
  | { readonly kind: 'racePacket'; readonly ms: number }
  /** The client goes quiet past the inactivity timer: the session ends, the run stops there. */
  | { readonly kind: 'inactivity' };

/** How a run that is still alive ends: the client polls until it has everything, or terminates. */
type Finish = 'poll' | 'terminate';

const messageCount = fc.integer({ min: 0, max: 2 });
const withAck = fc.constantFrom(true, true, true, false); // the ack is optional on the wire
const raceMs = fc.constantFrom(WAIT, INACTIVITY);

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 16, arbitrary: fc.record({ kind: fc.constant('send' as const), messages: messageCount, withAck }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('outOfOrder' as const), messages: messageCount, withAck }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('retransmit' as const), pick: fc.nat(40), freshAck: fc.boolean() }) },
  { weight: 16, arbitrary: fc.constant({ kind: 'packet' as const }) },
  { weight: 4, arbitrary: fc.constant({ kind: 'gone' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('goneLate' as const), pick: fc.nat(40) }) },
  { weight: 3, arbitrary: fc.constant({ kind: 'loseHeld' as const }) },
  { weight: 4, arbitrary: fc.constant({ kind: 'loseNext' as const }) },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('advance' as const),
      ms: fc.oneof(fc.constant(WAIT), fc.integer({ min: 1, max: WAIT - 1 })),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('raceSend' as const), messages: messageCount, ms: raceMs }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('racePacket' as const), ms: raceMs }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'inactivity' as const }) },
);

const scenarioArb = fc.tuple(
  fc.array(cmdArb, { minLength: 1, maxLength: MAX_COMMANDS, size: 'max' }),
  fc.constantFrom<Finish>('poll', 'terminate'),
);

/** Size of what ran, for the log: runs, steps taken, and commands skipped once a session had ended. */
const volume = { runs: 0, steps: 0, cutShort: 0 };

/** How often the runs reached the paths worth reaching; a path never reached proves nothing. */
const reached = {
  packetAnswersHeld: 0, secondRequest: 0, outOfOrder: 0, retransmit: 0, gone: 0, goneLate: 0, lostWithPackets: 0,
  waitTimeout: 0, dietimerBeaten: 0, inactivity: 0, terminate: 0, fullyDelivered: 0,
};

/** The same, for the runs with a queue of 3 (backpressure). */
const reachedSmall = { requestRefused: 0, packetRefused: 0, refusedTaken: 0 };

// ---------------------------------------------------------------------------------------------
// Driving the real FSM beside the model
// ---------------------------------------------------------------------------------------------

type Snapshot = { readonly state: ConnectionState; readonly data: ConnectionData };
type Arrival = { readonly id: number; readonly outcome?: Outcome | PacketOutcome; readonly error?: unknown };

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Wait until the FSM has handled everything in its mailbox (sys:get_state queues behind it), or has
 * died doing so (a monitor, since a get_state queued behind a fatal event is never answered).
 */
async function settle(h: Harness): Promise<Snapshot | undefined> {
  if (!h.alive()) {
    await tick();
    return undefined;
  }
  let mref: MonitorRef | undefined;
  const died = new Promise<undefined>((resolve) => { mref = monitor(h.fsm, () => resolve(undefined)); });
  const state = getState(h.fsm, 2000).then((s) => s as Snapshot, () => undefined);
  const snap = await Promise.race([state, died]);
  if (mref !== undefined) demonitor(mref);
  await tick(); // let the reply promises' callbacks run
  return h.alive() ? snap : undefined;
}

function isOutcome(o: Outcome | PacketOutcome): o is Outcome {
  return 'kind' in o;
}

/** Error texts are for people; the code is the contract. */
function normalise(o: Outcome | PacketOutcome | undefined): unknown {
  if (o === undefined || !isOutcome(o)) return o;
  if (o.kind === 'error') return { kind: 'error', code: o.code };
  if (o.kind === 'gone') return o;
  return { kind: o.kind, rid: o.rid, packets: o.packets.map((p) => ({ seq: p.seq, data: p.data })) };
}

function show(o: Outcome | PacketOutcome | undefined): string {
  if (o === undefined) return '?';
  if (!isOutcome(o)) return o.ok ? `seq ${o.seq}` : o.code;
  if (o.kind === 'packets') return `rid ${o.rid} [${o.packets.map((p) => p.seq).join(',')}]`;
  return o.kind === 'error' ? o.code : 'gone';
}

class Run {
  readonly model: ConnectionModel;
  readonly client = new SimClient();
  readonly trace: string[] = [];
  readonly h: Harness;
  #ids = 1;
  #packets = 0;
  readonly #arrived: Arrival[] = [];
  /** Calls the real FSM has not answered yet. */
  readonly #open = new Map<number, 'request' | 'packet'>();

  constructor(h: Harness, maxQueue: number | undefined) {
    this.h = h;
    this.model = new ConnectionModel({ wait: WAIT, inactivity: INACTIVITY, ...(maxQueue === undefined ? {} : { maxQueue }) });
  }

  get ended(): boolean {
    return this.model.ended !== undefined;
  }

  /** Put a request on the wire: the client tracks it, then the FSM gets it. */
  async request(label: string, body: SentBody, ack: number | undefined, advanceMs = 0): Promise<void> {
    const id = this.#ids++;
    if (this.model.held) reached.secondRequest++;
    this.client.track(id, body.rid);
    await this.step(`${label} rid ${body.rid} ack ${String(ack)} [${body.messages.join(',')}] #${id}`,
      [{ type: 'request', id, rid: body.rid, ack, messages: body.messages }], advanceMs);
  }

  async terminate(): Promise<void> {
    const body = this.client.fresh(0, true);
    const id = this.#ids++;
    this.client.track(id, body.rid);
    reached.terminate++;
    await this.step(`terminate rid ${body.rid} ack ${String(body.ack)} #${id}`,
      [{ type: 'terminate', id, rid: body.rid, ack: body.ack }]);
  }

  async packet(advanceMs = 0): Promise<void> {
    const data = `p${++this.#packets}`;
    if (this.model.held) reached.packetAnswersHeld++;
    await this.step(`packet ${data}`, [{ type: 'packet', id: this.#ids++, data }], advanceMs);
  }

  /** One step: the same events to both, the same clock move, then compare and check. */
  async step(label: string, events: ModelEvent[], advanceMs = 0): Promise<ModelReply[]> {
    volume.steps++;
    for (const ev of events) this.#dispatch(ev);
    if (advanceMs > 0) this.h.clock.advance(advanceMs);
    const expected = this.model.step(events, advanceMs);
    const snap = await settle(this.h);
    const arrived = this.#arrived.splice(0);
    const after = this.model.ended ?? `${this.model.state}${this.model.held ? ` #${this.model.held.token}` : ''}`;
    this.trace.push(`${label}${advanceMs > 0 ? ` (+${advanceMs} ms)` : ''} => `
      + `${arrived.map((a) => `#${a.id}: ${show(a.outcome)}`).join('; ') || 'no reply'} => ${after}`);
    this.#compareReplies(expected, arrived);
    for (const a of arrived) {
      if (a.outcome !== undefined && !isOutcome(a.outcome) && !a.outcome.ok) reachedSmall.packetRefused++;
      if (a.outcome === undefined || !isOutcome(a.outcome)) continue;
      if (a.outcome.kind === 'error' && a.outcome.code === 'overloaded') reachedSmall.requestRefused++;
      const lostWithPackets = a.outcome.kind === 'packets' && a.outcome.packets.length > 0 && this.client.outstanding.get(a.id)?.lost === true;
      if (lostWithPackets) reached.lostWithPackets++;
      this.client.receive(a.id, a.outcome);
    }
    this.#checkInvariants(snap);
    this.#compareWithModel(snap);
    return expected;
  }

  fail(what: string): never {
    throw new Error(`${what}\n  steps (last 20):\n    ${this.trace.slice(-20).join('\n    ')}`);
  }

  #dispatch(ev: ModelEvent): void {
    switch (ev.type) {
      case 'request':
        this.#watch(ev.id, 'request', this.h.request(ev.rid, { ack: ev.ack, messages: [...ev.messages], token: ev.id }));
        return;
      case 'terminate':
        this.#watch(ev.id, 'request', this.h.terminate(ev.rid, ev.ack));
        return;
      case 'packet':
        this.#watch(ev.id, 'packet', this.h.packet(ev.data));
        return;
      case 'request_gone':
        this.h.gone(ev.token);
        return;
    }
  }

  #watch(id: number, kind: 'request' | 'packet', reply: Promise<Outcome | PacketOutcome>): void {
    this.#open.set(id, kind);
    reply.then(
      (outcome) => { this.#open.delete(id); this.#arrived.push({ id, outcome }); },
      (error: unknown) => { this.#open.delete(id); this.#arrived.push({ id, error }); },
    );
  }

  #compareReplies(expected: readonly ModelReply[], arrived: readonly Arrival[]): void {
    const failed = arrived.find((a) => a.error !== undefined);
    if (failed) this.fail(`call #${failed.id} rejected: ${failed.error instanceof Error ? failed.error.message : String(failed.error)}`);
    const want = new Map(expected.map((r) => [r.id, normalise(r.outcome)]));
    const got = new Map(arrived.map((a) => [a.id, normalise(a.outcome)]));
    const ids = new Set([...want.keys(), ...got.keys()]);
    for (const id of ids) {
      if (!isDeepStrictEqual(want.get(id), got.get(id))) {
        this.fail(`reply to #${id}: the model says ${JSON.stringify(want.get(id)) ?? 'none'}, the FSM sent ${JSON.stringify(got.get(id)) ?? 'none'}`);
      }
    }
  }

  /** The invariants, read from the real FSM alone. */
  #checkInvariants(snap: Snapshot | undefined): void {
    const open = [...this.#open];
    const unanswered = open.filter(([, kind]) => kind === 'request').map(([id]) => id);
    if (unanswered.length > 1) this.fail(`more than one request unanswered: #${unanswered.join(', #')}`);
    if (open.some(([, kind]) => kind === 'packet')) this.fail('a handlePacket call was not answered');
    if (this.client.outstanding.size > MAX_OUTSTANDING) this.fail('the client has more than two requests outstanding');
    if (this.client.anomalies.length > 0) this.fail(`client: ${this.client.anomalies.join('; ')}`);
    if (snap === undefined) {
      if (unanswered.length > 0) this.fail(`the session ended with request #${unanswered.join(', #')} unanswered`);
      return;
    }
    const { state, data } = snap;
    if ((data.held !== undefined) !== (unanswered.length === 1) || (data.held !== undefined && data.held.token !== unanswered[0])) {
      this.fail(`data.held (${String(data.held?.token)}) is not the one unanswered request (${unanswered.join(',') || 'none'})`);
    }
    // One timer per session, armed lazily: always armed, due no later than the deadline that
    // counts (the held request's, else the dietimer's); when it fires is checked against the
    // model's deadlines.
    if (data.timer === undefined) this.fail('no timer armed');
    const due = data.held !== undefined ? data.held.since + WAIT : data.idleSince + INACTIVITY;
    if (data.timerAt > due) this.fail(`the timer is due at ${data.timerAt}, after the deadline ${due}`);
    // A packet answers the held request, and a request finding packets is answered at once.
    if (data.held !== undefined && data.outbox.hasPending) this.fail(`request #${data.held.token} is held while packets are pending`);
    // The clock holds exactly the one armed timer: one started and forgotten shows here.
    if (this.h.clock.pendingCount !== 1) this.fail(`${this.h.clock.pendingCount} timers scheduled, one armed`);
    const name = data.held !== undefined ? 'have_request' : data.outbox.hasPending ? 'have_packet' : 'waiting';
    if (state !== name) this.fail(`state ${state}, but the data says ${name}`);
  }

  #compareWithModel(snap: Snapshot | undefined): void {
    const m = this.model;
    if (m.ended !== undefined) {
      if (snap !== undefined) this.fail(`the model ended (${m.ended}) but the FSM is alive in ${snap.state}`);
      if (!isDeepStrictEqual(this.h.ended, [m.ended])) this.fail(`session ended with ${JSON.stringify(this.h.ended)}, expected ${m.ended}`);
    } else {
      if (snap === undefined) this.fail(`the FSM ended (${JSON.stringify(this.h.ended)}) but the model is alive`);
      if (snap.state !== m.state) this.fail(`state ${snap.state}, the model says ${m.state}`);
      if (snap.data.held?.token !== m.held?.token || snap.data.held?.rid !== m.held?.rid) {
        this.fail(`held ${JSON.stringify(snap.data.held && { rid: snap.data.held.rid, token: snap.data.held.token })}, the model says ${JSON.stringify(m.held)}`);
      }
      const pending = snap.data.outbox.pending().map((p) => p.seq);
      const modelPending = m.pending.map((p) => p.seq);
      if (!isDeepStrictEqual(pending, modelPending)) this.fail(`pending seqs [${pending.join(',')}], the model says [${modelPending.join(',')}]`);
    }
    if (!isDeepStrictEqual(this.h.messages, m.delivered)) {
      this.fail(`onMessage got ${JSON.stringify(this.h.messages)}, the model says ${JSON.stringify(m.delivered)}`);
    }
  }
}

async function apply(run: Run, cmd: Cmd): Promise<void> {
  const { client, model } = run;
  switch (cmd.kind) {
    case 'send':
    case 'raceSend': {
      // A client keeps new rids within 15 of one the server refused (it sends that one again).
      if (!client.canSend || !withinRefused(run, client.lowestUnsent)) return;
      const body = client.fresh(cmd.messages, cmd.kind === 'raceSend' || cmd.withAck);
      if (cmd.kind === 'send') return run.request('send', body, body.ack);
      const dieAt = model.dieAt;
      await run.request('raceSend', body, body.ack, cmd.ms);
      if (dieAt !== undefined && dieAt <= model.now && !run.ended) reached.dietimerBeaten++;
      client.giveUp();
      return;
    }
    case 'outOfOrder': {
      if (!client.canSend || client.reserved !== undefined || !withinRefused(run, client.nextRid + 1)) return;
      reached.outOfOrder++;
      const body = client.skipAhead(cmd.messages, cmd.withAck);
      return run.request('outOfOrder', body, body.ack);
    }
    case 'retransmit': {
      const rids = client.retransmittable();
      if (!client.canSend || rids.length === 0) return;
      const body = client.sent.get(rids[cmd.pick % rids.length] ?? 0);
      if (body === undefined) return;
      reached.retransmit++;
      return run.request('retransmit', body, cmd.freshAck ? client.ack : body.ack);
    }
    case 'packet':
      return run.packet();
    case 'racePacket':
      await run.packet(cmd.ms);
      client.giveUp();
      return;
    case 'gone': {
      const token = model.held?.token;
      if (token === undefined) return;
      reached.gone++;
      client.socketDied(token);
      await run.step(`socket of #${token} died`, [{ type: 'request_gone', token }]);
      return;
    }
    case 'goneLate': {
      const token = client.answered[cmd.pick % Math.max(1, client.answered.length)];
      if (token === undefined) return;
      reached.goneLate++;
      await run.step(`late request_gone for #${token}`, [{ type: 'request_gone', token }]);
      return;
    }
    case 'loseHeld': {
      const token = model.held?.token;
      if (token === undefined) return;
      client.lose(token);
      run.trace.push(`(the response to #${token} will be lost)`);
      return;
    }
    case 'loseNext':
      client.loseNext = true;
      run.trace.push('(the next response will be lost)');
      return;
    case 'advance': {
      const held = model.held?.token;
      const replies = await run.step('clock', [], cmd.ms);
      if (held !== undefined && replies.some((r) => r.id === held)) reached.waitTimeout++;
      client.giveUp();
      return;
    }
    case 'inactivity':
      await run.step('client quiet', [], INACTIVITY);
      if (!run.ended) await run.step('client still quiet', [], INACTIVITY);
      return;
  }
}

/** True when a fresh `rid` stays within 15 of every rid the server refused and has not taken since. */
function withinRefused(run: Run, rid: number): boolean {
  return [...run.model.refused].every((r) => rid - r < RID_WINDOW);
}

/** A session still alive at the end: the client catches up (or terminates) with nothing lost. */
async function finish(run: Run, how: Finish): Promise<void> {
  const { client, model } = run;
  if (run.ended) return;
  client.giveUp();
  client.loseNext = false;
  // Requests refused with 503 go again, acking what arrived, until they are taken.
  for (let i = 0; i < 8 && model.refused.size > 0 && !run.ended; i++) {
    const body = client.sent.get(Math.min(...model.refused));
    if (body === undefined) break;
    reachedSmall.refusedTaken++;
    await run.request('finish: refused again', body, client.ack);
    client.giveUp();
    if (model.refused.has(body.rid) && client.canSend && client.reserved === undefined && withinRefused(run, client.nextRid)) {
      const poll = client.fresh(0, true);
      await run.request('finish: poll to drain', poll, poll.ack);
      client.giveUp();
    }
  }
  if (client.reserved !== undefined) {
    const body = client.fresh(0, true);
    await run.request('finish: the skipped', body, body.ack);
    client.giveUp();
  }
  if (how === 'terminate') return run.terminate();
  // Bounded: the first poll carries every pending packet, the second acks them all and is held.
  for (let i = 0; i < 3 && client.ack < model.lastSeq; i++) {
    const body = client.fresh(0, true);
    await run.request('finish: poll', body, body.ack);
    client.giveUp();
  }
}

/** What the client and the application ended up with. */
function checkEnd(run: Run): void {
  const { client, model } = run;
  client.delivered.forEach((p, i) => {
    if (p.seq !== i + 1) run.fail(`the client application got seqs [${client.delivered.map((q) => q.seq).join(',')}]: not 1, 2, 3... once each`);
    if (!isDeepStrictEqual(p.data, model.dataOf(p.seq))) run.fail(`seq ${p.seq} arrived as ${JSON.stringify(p.data)}, pushed as ${JSON.stringify(model.dataOf(p.seq))}`);
    if ((client.wire.get(p.seq) ?? 0) < 1) run.fail(`seq ${p.seq} never seen on the wire`);
  });
  // Only a session that died of inactivity may leave packets undelivered: the client never polled again.
  if (model.ended !== 'inactivity') {
    if (client.delivered.length !== model.lastSeq) {
      run.fail(`the client got ${client.delivered.length} of ${model.lastSeq} packets (session ${model.ended ?? 'alive'})`);
    }
    if (model.lastSeq > 0) reached.fullyDelivered++;
  } else {
    reached.inactivity++;
  }
  const messages = [...expectedMessages(client, model.refused), ...model.flushed];
  if (!isDeepStrictEqual(run.h.messages, messages)) {
    run.fail(`onMessage got ${JSON.stringify(run.h.messages)}, the client sent (below rid ${client.lowestUnsent}) ${JSON.stringify(messages)}`);
  }
}

async function scenario(cmds: readonly Cmd[], how: Finish, maxQueue?: number): Promise<void> {
  const h = await startConnection(maxQueue === undefined ? {} : { maxQueue });
  try {
    const run = new Run(h, maxQueue);
    volume.runs++;
    await run.step('start', []);
    for (const [i, cmd] of cmds.entries()) {
      if (run.ended) { // the session is over: nothing more can happen to it
        volume.cutShort += cmds.length - i;
        break;
      }
      await apply(run, cmd);
    }
    await finish(run, how);
    checkEnd(run);
  } finally {
    await h.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// The property
// ---------------------------------------------------------------------------------------------

void t.test('connection FSM against the reference model: random requests, losses, packets and timers', async (t) => {
  try {
    await fc.assert(fc.asyncProperty(scenarioArb, ([cmds, how]) => scenario(cmds, how)), {
      numRuns: NUM_RUNS,
      includeErrorInReport: true,
    });
  } catch (err) {
    // The report carries the seed and path (to replay), the shrunk counterexample, and the failing
    // step with the trace of the steps before it; as a diagnostic, tap prints it line by line.
    t.fail('the FSM broke a property (shrunk counterexample in `report`)', { report: err instanceof Error ? err.message : String(err) });
    return;
  }
  t.pass(`${NUM_RUNS} random sequences of up to ${MAX_COMMANDS} commands agree with the model`);
  t.comment(`volume: ${JSON.stringify(volume)}; paths reached: ${JSON.stringify(reached)}`);
  // A property that never reaches a path cannot catch a bug on it.
  for (const [path, count] of Object.entries(reached)) t.ok(count > 0, `reached: ${path}`);
});

void t.test('with a queue of 3: backpressure against the model (a full queue refuses new messages before they are taken, and handlePacket)', async (t) => {
  try {
    await fc.assert(fc.asyncProperty(scenarioArb, ([cmds, how]) => scenario(cmds, how, 3)), {
      numRuns: Math.ceil(NUM_RUNS / 2),
      includeErrorInReport: true,
    });
  } catch (err) {
    t.fail('the FSM broke a property (shrunk counterexample in `report`)', { report: err instanceof Error ? err.message : String(err) });
    return;
  }
  t.pass('random sequences agree with the model under backpressure');
  t.comment(`paths reached: ${JSON.stringify(reachedSmall)}`);
  for (const [path, count] of Object.entries(reachedSmall)) t.ok(count > 0, `reached: ${path}`);
});
