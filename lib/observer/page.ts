/**
 * The observer page: its HTML (here, so the library serves it from anywhere) and its script, the
 * bundle scripts/build-client.mjs makes of lib/observer/page/observer.ts (dist/client/observer.js,
 * the client bundled in). The page is static: everything it shows arrives over its feed.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The observer's path when none is given. */
export const DEFAULT_OBSERVER_PATH = '/observer';

/** Where the page's bundle is by default: the package's dist/client. */
export function defaultBundleDir(from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'dist', 'client');
    if (dirname(dir) === dir) return join(from, 'client');
  }
}

const HEADERS = {
  // No inline or foreign script runs: the page's one script is served from here.
  'Content-Security-Policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
};

const escapeAttr = (s: string): string => s.replace(/[&"<>]/g, (c) => `&#${c.charCodeAt(0)};`);

/** The page's HTML. */
export function pageHtml(base: string): string {
  const b = escapeAttr(base);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="observer-base" content="${b}">
<title>comet-fsm observer</title>
<style>
:root { font-family: system-ui, sans-serif; color: #222; background: #f6f6f4; font-size: 14px; }
body { max-width: 72rem; margin: 1rem auto; padding: 0 1rem; }
header { display: flex; align-items: baseline; gap: 1rem; }
h1 { font-size: 1.3rem; margin: 0 0 .5rem; }
h2 { font-size: 1rem; margin: 1rem 0 .4rem; }
section { background: #fff; border: 1px solid #ddd; border-radius: .3rem; padding: .5rem .8rem; margin-bottom: .8rem; }
.status { font-size: .85rem; padding: .1rem .5rem; border-radius: 1rem; background: #ddd; }
.status[data-state="open"] { background: #c8efc8; color: #145214; }
.status[data-state="reconnecting"], .status[data-state="connecting"] { background: #fbe7b5; color: #6b4a00; }
.status[data-state="closed"] { background: #f3c4c4; color: #7a1010; }
ul.tree, ul.tree ul { list-style: none; margin: 0; padding-left: 1.2rem; }
ul.tree { padding-left: 0; }
.node > .row { display: flex; gap: .6rem; align-items: center; padding: .15rem 0; flex-wrap: wrap; }
.node .id { font-weight: 600; font-family: ui-monospace, monospace; }
.node .meta, .muted { color: #666; font-size: .85rem; }
.node[data-status="running"] > .row .st { color: #145214; }
.node[data-status="restarting"] > .row .st, .node[data-status="undefined"] > .row .st { color: #6b4a00; }
.node[data-status="stopped"] > .row .st { color: #7a1010; }
.node[data-status="suspended"] > .row .st { color: #44359a; font-weight: 600; }
.node.flash > .row { background: #fff1c2; }
button, select, input { font: inherit; font-size: .8rem; }
.counts { display: flex; gap: 1rem; flex-wrap: wrap; }
.count { border: 1px solid #ddd; border-radius: .3rem; padding: .3rem .6rem; min-width: 6rem; }
.count b { display: block; font-size: 1.3rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .15rem .5rem; border-bottom: 1px solid #eee; font-variant-numeric: tabular-nums; }
td.tag { font-family: ui-monospace, monospace; }
tr[data-state="have_request"] td.st { color: #145214; }
tr[data-state="have_packet"] td.st { color: #6b4a00; }
ol.history { list-style: none; margin: 0; padding: 0; max-height: 20rem; overflow-y: auto; font-family: ui-monospace, monospace; font-size: .8rem; }
ol.history li { padding: .1rem 0; border-bottom: 1px dotted #eee; }
ol.history li[data-kind="exit"], ol.history li[data-kind="shutdown"] { color: #7a1010; }
ol.history li[data-kind="restart"] { color: #145214; }
ol.history li[data-kind="action"] { color: #44359a; }
tr[data-lease="alive"] td.lease { color: #145214; }
tr[data-lease="lapsed"] td.lease, tr[data-lease="fenced"] td.lease { color: #7a1010; }
tr[data-self="true"] td:first-child { font-weight: 600; }
#notice { min-height: 1.2rem; color: #7a1010; }
</style>
</head>
<body>
<header><h1>comet-fsm observer</h1><span id="status" class="status" data-testid="status" data-state="connecting" role="status">connecting</span></header>
<p id="notice" data-testid="notice" aria-live="polite"></p>
<section><h2>Supervision tree</h2><ul id="tree" class="tree" data-testid="tree"></ul></section>
<section id="cluster-section" data-testid="cluster" hidden><h2>Cluster <span id="cluster-summary" class="muted"></span></h2>
<table><thead><tr><th>node</th><th>lease</th><th>last renewal seen</th><th>expires in</th><th>Redis</th><th>sessions</th><th>forwarded</th><th>served</th></tr></thead>
<tbody id="cluster"></tbody></table></section>
<section><h2>Connection FSMs</h2><div id="counts" class="counts" data-testid="counts"></div></section>
<section><h2>Sessions</h2>
<p><input id="query" data-testid="query" placeholder="sid tag (first characters)" maxlength="10" autocomplete="off">
<button id="prev" data-testid="prev">&larr;</button> <span id="pageinfo" class="muted" data-testid="pageinfo"></span> <button id="next" data-testid="next">&rarr;</button></p>
<table><thead><tr><th>process</th><th>sid tag</th><th>state</th><th>queued</th><th>bytes</th><th>held poll</th><th>in</th><th>out</th><th></th></tr></thead>
<tbody id="sessions" data-testid="sessions"></tbody></table></section>
<section><h2>History <span class="muted">(exits and restarts, newest first)</span></h2><ol id="history" class="history" data-testid="history"></ol></section>
<script type="module" src="${b}/observer.js"></script>
</body>
</html>
`;
}

/** Serve the HTML. */
export function sendPage(res: ServerResponse, base: string, head: boolean): void {
  const body = Buffer.from(pageHtml(base), 'utf8');
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': body.length, ...HEADERS });
  res.end(head ? undefined : body);
}

/** Serve the bundle (500 with the command that builds it, if it is missing). */
export function sendScript(res: ServerResponse, bundleDir: string, head: boolean): void {
  const path = join(bundleDir, 'observer.js');
  readFile(path).then(
    (body) => {
      res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Content-Length': body.length, ...HEADERS });
      res.end(head ? undefined : body);
    },
    () => {
      res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('observer.js is missing: run `npm run build:client`\n');
    },
  );
}
