/**
 * Engine.IO v6 (Socket.IO's engine) with only its polling transport and otherwise default options,
 * running the same echo and broadcast apps as `npm run echo`. The admin endpoints live on the same
 * port: Engine.IO takes `/engine.io/` and hands every other request to our handler.
 */
import { createServer, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server as EngineServer, type ServerOptions, type Socket as EngineSocket } from 'engine.io';

/** A running Engine.IO bench server. */
export interface EngineIoBenchServer {
  readonly server: HttpServer;
  readonly engine: EngineServer;
  listen(port: number, host: string): Promise<number>;
  stats(): { sessions: number; held: number };
  close(): Promise<void>;
}

const json = (res: ServerResponse, status: number, body: string): void => {
  res.writeHead(status, ['Content-Type', 'application/json', 'Content-Length', String(Buffer.byteLength(body))]);
  res.end(body);
};

/**
 * Create (not yet bound) the Engine.IO polling server with echo, broadcast and stats. The bench
 * passes no `options` (Engine.IO's defaults); tests shorten the ping interval.
 *
 * @example
 * const eio = createEngineIoServer();
 * const port = await eio.listen(0, '127.0.0.1'); // clients: GET /engine.io/?EIO=4&transport=polling
 */
export const createEngineIoServer = (options: Partial<ServerOptions> = {}): EngineIoBenchServer => {
  const engine = new EngineServer({ ...options, transports: ['polling'] });
  // `clients` is public in Engine.IO's documentation and is what its own users broadcast over, but
  // its typings mark it protected; reading it spares a second per-session structure of ours.
  const clients = (): Record<string, EngineSocket> => (engine as unknown as { clients: Record<string, EngineSocket> }).clients;

  engine.on('connection', (socket: EngineSocket) => {
    socket.on('message', (data: unknown) => socket.send(data as string));
  });

  const stats = (): { sessions: number; held: number } => {
    let held = 0;
    const all = clients();
    for (const id in all) if (all[id]?.transport.writable === true) held++;
    return { sessions: engine.clientsCount, held };
  };

  const server = createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/admin/broadcast') {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        let data: unknown;
        try {
          data = (JSON.parse(body) as { data?: unknown }).data;
        } catch {
          data = undefined;
        }
        if (data === undefined) return json(res, 400, '{"error":"bad_request"}');
        // Engine.IO carries strings: a non-string payload goes as its JSON text.
        const text = typeof data === 'string' ? data : JSON.stringify(data);
        const all = clients();
        for (const id in all) all[id]?.send(text);
        json(res, 200, `{"sessions":${engine.clientsCount}}`);
      });
      return;
    }
    if (req.url === '/admin/stats') return json(res, 200, JSON.stringify(stats()));
    json(res, 404, '{"error":"not_found"}');
  });
  engine.attach(server);

  return {
    server,
    engine,
    stats,
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
      }),
    close: () =>
      new Promise((resolve) => {
        engine.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
};
