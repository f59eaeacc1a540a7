/**
 * `comet-fsm tree URL`: the observer's supervision tree in a terminal, read from
 * `GET <observer>/api/tree`. `--watch` redraws it every second (`--interval MS`), marking what
 * restarted since the last draw. URL is the server (`http://127.0.0.1:8080/`) or its observer
 * (`http://127.0.0.1:8080/observer`).
 */
import { parseArgs } from 'node:util';
import type { TreeSnapshot } from '../lib/index.js';
import { renderSnapshot } from '../lib/observer/render.js';

export const TREE_USAGE = `Usage: comet-fsm tree <url> [--watch] [--interval MS] [--token TOKEN]

Prints the supervision tree of a comet-fsm server with its observer on (npm start, npm run echo):
each supervisor with its strategy, intensity and restarts in its window, each child with its
status, restart type and restarts, then the sessions by FSM state. <url> is the server
(http://127.0.0.1:8080/) or its observer page (http://127.0.0.1:8080/observer).

Options:
  --watch          redraw every interval; a node restarted since the last draw is marked
  --interval MS    the redraw interval (default 1000)
  --token TOKEN    the server's --observer-token (also COMET_OBSERVER_TOKEN)
  -h, --help       this text

Exit status: 0, 1 if the server cannot be read (a 404 means no observer there, or a wrong token),
2 on bad usage.`;

export interface TreeIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly env: NodeJS.ProcessEnv;
  /** Resolves when --watch should stop (SIGINT). */
  readonly interrupted?: Promise<void>;
}

/** The tree endpoint for a server or observer URL. */
export function treeUrl(url: string): string {
  const u = new URL(url);
  const path = u.pathname.replace(/\/+$/, '');
  u.pathname = path.endsWith('/observer') ? `${path}/api/tree` : `${path}/observer/api/tree`;
  u.search = '';
  return u.href;
}

export async function treeMain(argv: readonly string[], io: TreeIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv], allowPositionals: true, strict: true,
      options: { watch: { type: 'boolean' }, interval: { type: 'string' }, token: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    io.stderr.write(`${err instanceof Error ? err.message : String(err)}\n\n${TREE_USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    io.stdout.write(`${TREE_USAGE}\n`);
    return 0;
  }
  const interval = values.interval === undefined ? 1000 : Number(values.interval);
  const [url, ...extra] = positionals;
  let endpoint: string | undefined;
  try {
    endpoint = url === undefined ? undefined : treeUrl(url);
  } catch {
    endpoint = undefined;
  }
  if (endpoint === undefined || extra.length > 0 || !Number.isSafeInteger(interval) || interval < 100) {
    io.stderr.write(`${TREE_USAGE}\n`);
    return 2;
  }
  const token = values.token ?? io.env.COMET_OBSERVER_TOKEN;
  const headers: Record<string, string> = token === undefined ? {} : { Authorization: `Bearer ${token}` };
  const read = async (): Promise<TreeSnapshot | string> => {
    try {
      const res = await fetch(endpoint, { headers });
      if (res.status === 404) return `${endpoint}: 404 (no observer there, or the token is wrong)`;
      if (!res.ok) return `${endpoint}: HTTP ${res.status}`;
      return (await res.json()) as TreeSnapshot;
    } catch (err) {
      return `${endpoint}: ${err instanceof Error ? err.message : String(err)}`;
    }
  };
  if (values.watch !== true) {
    const snap = await read();
    if (typeof snap === 'string') {
      io.stderr.write(`${snap}\n`);
      return 1;
    }
    io.stdout.write(`${renderSnapshot(snap).join('\n')}\n`);
    return 0;
  }
  let before: TreeSnapshot | undefined;
  let stop = false;
  void io.interrupted?.then(() => {
    stop = true;
  });
  while (!stop) {
    const snap = await read();
    // Clear the screen and draw from the top: a redraw, not a scroll.
    const text = typeof snap === 'string' ? `${snap}\n` : `${renderSnapshot(snap, before).join('\n')}\n`;
    io.stdout.write(`\x1b[H\x1b[2J${new Date().toLocaleTimeString()}  ${endpoint}\n\n${text}`);
    if (typeof snap !== 'string') before = snap;
    await Promise.race([new Promise((r) => setTimeout(r, interval)), io.interrupted]);
  }
  return 0;
}
