// `npm run crash-demo` says what each supervisor did: a restart where one happened, and no
// restart for the crash after which the supervisor gives up.
import t from 'tap';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from '../examples/chat/server.js';

void t.test('crash-demo reports restarts, and no restart when the intensity is reached', async (t) => {
  const root = projectRoot();
  const { stdout } = await promisify(execFile)(process.execPath, [...process.execArgv, join(root, 'examples', 'crash-demo.ts')], {
    cwd: root,
    timeout: 30_000,
  });
  const lines = stdout.split('\n');
  const terminated = lines.filter((l) => l.includes('supervisor: child_terminated'));
  t.equal(terminated.length, 6, 'one report per crash');
  t.same(
    terminated.map((l) => l.slice(l.indexOf('->'))),
    ['-> restart', '-> restart', '-> restart', '-> restart', '-> restart', '-> no restart: the restart intensity is reached'],
  );
  const last = lines.indexOf(terminated.at(-1) ?? '');
  t.match(lines[last + 1], /supervisor: shutdown app_sup \(reached_max_restart_intensity\) -> shutdown/);
  t.match(stdout, /-> restart\n {4}supervisor: started b \(<0\.\d+\.0>\)\n/, 'a restart is followed by its progress report');
  t.match(stdout, /supervisor gave up and exited: shutdown/);
});
