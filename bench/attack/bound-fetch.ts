/**
 * A `fetch` for `CometClient` whose connections leave from a source address of our choice
 * (the global fetch cannot bind one), on node:http keep-alive sockets.
 */
import { Agent, request } from 'node:http';
import type { FetchLike } from '../../lib/client/index.js';

/** A fetch bound to `localAddress`, and a way to close its sockets. */
export const boundFetch = (localAddress: string): { fetch: FetchLike; close: () => void } => {
  const agent = new Agent({ keepAlive: true, localAddress });
  const fetch: FetchLike = (url, init) =>
    new Promise((resolve, reject) => {
      const req = request(
        url,
        { method: init.method, headers: { ...init.headers, 'Content-Length': String(Buffer.byteLength(init.body)) }, agent, localAddress, signal: init.signal },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({ status: res.statusCode ?? 0, text: () => Promise.resolve(text) });
          });
        },
      );
      req.on('error', reject);
      req.end(init.body);
    });
  return { fetch, close: () => agent.destroy() };
};
