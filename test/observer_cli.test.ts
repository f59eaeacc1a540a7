// `comet-fsm tree URL`, in-process against a server with its observer on: the tree as text, a
// redraw under --watch that marks the restarted node, and a clear failure where there is no observer.
import t from 'tap';
import { main } from '../bin/comet-fsm.js';
import { treeUrl } from '../bin/tree.js';
import { createCometServer } from '../lib/index.js';
import { pipedIo } from './fixtures/cli_io.js';

const io = pipedIo;

async function serve(t: { teardown(fn: () => unknown): void }, observer: boolean) {
  const comet = await createCometServer({ observer });
  t.teardown(() => comet.close());
  const { port } = await comet.listen(0, '127.0.0.1');
  return `http://127.0.0.1:${port}/`;
}

void t.test('the URL of a server or of its observer both lead to the tree', async (t) => {
  t.equal(treeUrl('http://127.0.0.1:8080/'), 'http://127.0.0.1:8080/observer/api/tree');
  t.equal(treeUrl('http://127.0.0.1:8080/observer'), 'http://127.0.0.1:8080/observer/api/tree');
  t.equal(treeUrl('http://h/app/observer/?token=x'), 'http://h/app/observer/api/tree');
});

void t.test('tree URL prints the tree with flags, restart types, restarts and the sessions by state', async (t) => {
  const url = await serve(t, true);
  const s = io();
  t.equal(await main(['tree', url], s), 0);
  t.same(s.out().trimEnd().split('\n'), [
    'comet_sup (supervisor one_for_one, intensity 1 in 5 s: 0 in window)  running  restarts 0',
    '  session_ids  running  permanent  restarts 0',
    '  connection_sup (supervisor simple_one_for_one, intensity 1 in 5 s: 0 in window)  running  permanent  restarts 0',
    '    connection  x0  undefined  temporary  restarts 0',
    'sessions 0: waiting 0, have_request 0, have_packet 0; held polls 0, packets queued 0',
  ]);
});

void t.test('--watch redraws, and marks the node restarted since the last draw', async (t) => {
  const url = await serve(t, true);
  const s = io();
  let stop!: () => void;
  const interrupted = new Promise<void>((r) => (stop = r));
  const done = main(['tree', url, '--watch', '--interval', '100'], { ...s, interrupted });
  const until = async (re: RegExp): Promise<void> => {
    for (let i = 0; i < 200 && !re.test(s.out()); i++) await new Promise((r) => setTimeout(r, 25));
  };
  await until(/session_ids {2}running/);
  const crashed = await fetch(`${url}observer/api/crash`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"path":"comet_sup/session_ids","reason":"kill"}' });
  t.equal(crashed.status, 200);
  await until(/session_ids {2}running {2}permanent {2}restarts 1 {2}<- restarted/);
  stop();
  t.equal(await done, 0);
  t.ok(s.out().includes('\u001b[H\u001b[2J'), 'each draw clears the screen');
  t.match(s.out(), /session_ids {2}running {2}permanent {2}restarts 1 {2}<- restarted/);
});

void t.test('no observer there: one line on stderr, exit 1; bad usage: 2', async (t) => {
  const url = await serve(t, false);
  const s = io();
  t.equal(await main(['tree', url], s), 1);
  t.match(s.err(), /404 \(no observer there, or the token is wrong\)/);
  t.equal(await main(['tree'], io()), 2);
  t.equal(await main(['tree', 'not a url'], io()), 2);
});

void t.test('the runnable servers: the observer is on, --observer-token needs 16 characters, --observer-actions or COMET_OBSERVER_ACTIONS=1', async (t) => {
  const { parseConfig, UsageError } = await import('../bin/server_config.js');
  const run = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
    const p = parseConfig(argv, env, 8080);
    if (p.kind !== 'run') throw new Error('not a run');
    return p.config.options.observer;
  };
  t.same(run([]), { actions: false }, 'on by default: loopback only, no actions elsewhere');
  t.same(run(['--observer-token', 'x'.repeat(16), '--observer-actions']), { token: 'x'.repeat(16), actions: true });
  t.same(run([], { COMET_OBSERVER_TOKEN: 'y'.repeat(20), COMET_OBSERVER_ACTIONS: '1' }), { token: 'y'.repeat(20), actions: true });
  t.throws(() => run(['--observer-token', 'short']), UsageError);
});
