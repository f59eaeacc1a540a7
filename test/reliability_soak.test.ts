// The short soak (the CI version of `npm run soak`): 15 s, 200 CometClients on loopback, an FSM
// crash every 2 s, sockets dropped server-side and requests aborted client-side, the server
// restarted once half-way. Nothing may be lost within a live session, nothing duplicated, and
// every send must settle. bin/soak.ts runs as its own process, bundled from the source.
import t from 'tap';
import { bundleBin, spawnNode } from './fixtures/soak_process.js';

const DURATION_S = 15;
const CLIENTS = 200;
/** The run, its drain and closing, with room for a loaded CI machine. */
const GUARD_MS = 90_000;

interface Report {
  readonly sent: number;
  readonly accepted: number;
  readonly delivered: number;
  readonly lostInLiveSessions: number;
  readonly inEndedSessions: number;
  readonly duplicated: number;
  readonly unsettled: number;
  readonly rejected: number;
  readonly fsmCrashes: number;
  readonly serverRestarts: number;
  readonly sessionsOpened: number;
  readonly socketsDropped: number;
  readonly requestsAborted: number;
  readonly ok: boolean;
}

void t.test(`soak: ${DURATION_S} s, ${CLIENTS} clients, crashes, drops, aborts and a restart: nothing lost within a live session, nothing duplicated`, { timeout: GUARD_MS + 10_000 }, async (t) => {
  const soak = await bundleBin(t, 'soak');
  const run = spawnNode(t, soak, ['--duration', String(DURATION_S), '--clients', String(CLIENTS), '--fault-every', '2000', '--json']);
  const guard = setTimeout(() => run.child.kill('SIGKILL'), GUARD_MS);
  const exit = await run.exited;
  clearTimeout(guard);
  const table = run.lines.filter((l) => !l.startsWith('{')).join('\n');
  t.comment(table);

  const line = run.lines.find((l) => l.startsWith('{"soak"'));
  if (line === undefined) {
    t.fail(`no report (exit ${String(exit.code)}, signal ${String(exit.signal)}): ${run.stderr()}`);
    return;
  }
  const r = (JSON.parse(line) as { soak: Report }).soak;
  t.equal(r.lostInLiveSessions, 0, 'nothing lost within a live session');
  t.equal(r.duplicated, 0, 'nothing duplicated within a session');
  t.equal(r.unsettled, 0, 'every send settled');
  t.equal(r.rejected, 0, 'no send rejected: the clients reconnect');
  t.ok(r.ok, 'the soak says PASS');
  t.equal(exit.code, 0, 'exit code 0');

  // The faults really happened, and the load was real.
  t.equal(r.serverRestarts, 1, 'the server was restarted once');
  t.ok(r.fsmCrashes >= 3, `FSMs crashed (${r.fsmCrashes})`);
  t.ok(r.socketsDropped > 0, `sockets dropped server-side (${r.socketsDropped})`);
  t.ok(r.requestsAborted > 0, `requests aborted client-side (${r.requestsAborted})`);
  // Not + fsmCrashes: a crash may hit an orphan session (its setup's answer was aborted).
  t.ok(r.sessionsOpened >= 2 * CLIENTS, `every client set up a new session after the restart (${r.sessionsOpened} sessions)`);
  t.ok(r.sent >= CLIENTS * DURATION_S / 4, `a real load (${r.sent} messages)`);
  t.equal(r.delivered + r.inEndedSessions + r.lostInLiveSessions, r.accepted, 'every accepted message is accounted for');
});
