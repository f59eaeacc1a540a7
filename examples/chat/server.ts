/**
 * The chat demo's server side: the static routes (the page, its script, the client bundle) and
 * the comet hooks that keep the room (presence, recent lines) and relay every line to every session. `bin/demo.ts` runs it for
 * `npm start`; `startChatServer` runs it in-process (the browser test, embedding).
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCometServer, throttleLogger, type CometServer, type CometServerOptions, type Logger, type SessionContext } from '../../lib/index.js';
import { chatRequestProblem, type ChatEvent, type ChatRequest } from './protocol.js';
import { ChatRoom } from './room.js';

/** Where the page and the bundles live. */
export interface ChatAssets {
  /** Holds index.html (the source tree's examples/chat). */
  readonly pageDir: string;
  /** Holds chat.js and comet-client.js (dist/client, made by `npm run build:client`). */
  readonly bundleDir: string;
}

/** The project root: the nearest folder up with a package.json, from src (examples/chat) or dist (dist/examples/chat). */
export function projectRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

/** The default asset locations, relative to the project root. */
export function defaultAssets(root: string = projectRoot()): ChatAssets {
  return { pageDir: join(root, 'examples', 'chat'), bundleDir: join(root, 'dist', 'client') };
}

type Route = { readonly dir: keyof ChatAssets; readonly file: string; readonly type: string };

const JS = 'text/javascript; charset=utf-8';
const ROUTES: ReadonlyMap<string, Route> = new Map([
  ['/', { dir: 'pageDir', file: 'index.html', type: 'text/html; charset=utf-8' }],
  ['/index.html', { dir: 'pageDir', file: 'index.html', type: 'text/html; charset=utf-8' }],
  ['/chat.js', { dir: 'bundleDir', file: 'chat.js', type: JS }],
  ['/comet-client.js', { dir: 'bundleDir', file: 'comet-client.js', type: JS }],
  ['/comet-client.min.js', { dir: 'bundleDir', file: 'comet-client.min.js', type: JS }],
  ['/comet-client.js.map', { dir: 'bundleDir', file: 'comet-client.js.map', type: 'application/json' }],
  ['/comet-client.min.js.map', { dir: 'bundleDir', file: 'comet-client.min.js.map', type: 'application/json' }],
]);

const SECURITY_HEADERS = {
  // Second line of defence against injected markup: no inline or foreign scripts run at all.
  'Content-Security-Policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-cache',
};

/**
 * Static routes for the chat. Returns a function answering the request and returning true if
 * the URL is one of the chat's files (a fixed list: no path from the request reaches the disk).
 */
export function chatRoutes(assets: ChatAssets, logger?: Logger): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (pathname === '/favicon.ico') {
      // Browsers ask for it unprompted; an empty answer keeps their consoles free of 404s.
      res.writeHead(204, SECURITY_HEADERS).end();
      return true;
    }
    const route = ROUTES.get(pathname);
    if (route === undefined) return false;
    const path = join(assets[route.dir], route.file);
    readFile(path).then(
      (body) => {
        res.writeHead(200, { 'Content-Type': route.type, 'Content-Length': body.length, ...SECURITY_HEADERS });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (err: unknown) => {
        logger?.error({ path, err: String(err) }, 'chat: asset missing (run `npm run build:client`)');
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end(`${route.file} is missing: run \`npm run build:client\`\n`);
      },
    );
    return true;
  };
}

/**
 * The comet hooks of the chat: a `join` or `say` puts the session in the room (a newcomer gets
 * the recent lines), every `say` goes to every session, every change of who is in the room goes
 * to every session, and anything else is refused back to its sender, never dropped in silence.
 */
export function chatHooks(
  comet: () => CometServer,
  logger?: Logger,
  room: ChatRoom = new ChatRoom(),
): Pick<CometServerOptions, 'onMessage' | 'onSessionEnd'> {
  // A client decides how often these fire (once per message it sends): throttled, one line per
  // kind per interval with a count. (They name no session; if one did, by sidTag(sid), never the sid.)
  const log = logger === undefined ? undefined : throttleLogger(logger, { levels: ['debug', 'info', 'warn', 'error'] });
  const broadcast = (event: ChatEvent): void => {
    comet()
      .broadcast(event)
      .catch((err: unknown) => log?.error({ type: event.type, err: String(err) }, 'chat: broadcast failed'));
  };
  const tell = (session: SessionContext, event: ChatEvent): void => {
    try {
      session.push(event);
    } catch (err) {
      log?.warn({ type: event.type, err: String(err) }, 'chat: could not answer one session');
    }
  };
  return {
    onMessage(sid, data, session) {
      const problem = chatRequestProblem(data);
      if (problem !== undefined) {
        log?.debug({ problem }, 'chat: refused a request');
        tell(session, { type: 'refused', reason: problem });
        return;
      }
      const request = data as ChatRequest;
      const { entered, changed } = room.join(sid, request.nick);
      if (entered) tell(session, { type: 'history', lines: room.history() });
      if (changed) broadcast({ type: 'presence', nicks: room.nicks() });
      if (request.type === 'say') {
        // Rebuild the line so nothing but nick, text and the sender's id is relayed.
        const line = { nick: request.nick, text: request.text };
        room.remember(line);
        broadcast({ type: 'line', ...line, ...(request.id === undefined ? {} : { id: request.id }) });
      }
    },
    onSessionEnd(sid) {
      if (room.leave(sid)) broadcast({ type: 'presence', nicks: room.nicks() });
    },
  };
}

/** Options of {@link startChatServer}: the comet server's options, plus where to listen and the assets. */
export interface ChatServerOptions extends Omit<CometServerOptions, 'onMessage' | 'onSessionEnd'> {
  readonly port?: number;
  readonly host?: string;
  readonly assets?: ChatAssets;
  /** The room's memory; a fresh one with the default limits if absent. */
  readonly room?: ChatRoom;
}

/** A running chat server. */
export interface ChatServer {
  /** The page's URL, e.g. `http://127.0.0.1:8080/`. */
  readonly url: string;
  readonly comet: CometServer;
  /** Graceful: held polls answered, sessions ended, the listener closed. */
  close(): Promise<void>;
}

/**
 * Starts the chat in this process.
 *
 * @example
 * ```ts
 * const chat = await startChatServer({ port: 0 });
 * console.log(`open ${chat.url}`);
 * await chat.close();
 * ```
 */
export async function startChatServer(options: ChatServerOptions = {}): Promise<ChatServer> {
  const { port = 0, host = '127.0.0.1', assets = defaultAssets(), room, ...cometOptions } = options;
  // The hooks run only after a client sent something, by which time `c` is assigned.
  const c: CometServer = await createCometServer({ ...cometOptions, ...chatHooks(() => c, cometOptions.logger, room) });
  const address = await c.listen(port, host);
  const server = c.httpServer;
  if (server === undefined) throw new Error('chat: listen did not create a server');
  // Put the static routes in front of the comet handler on the server `listen` configured
  // (its timeouts are set for held polls), so close() still shuts everything down.
  const routes = chatRoutes(assets, cometOptions.logger);
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (!routes(req, res)) c.handler(req, res);
  });
  return { url: `http://${host}:${address.port}/`, comet: c, close: () => c.close() };
}
