/**
 * Rows 8 and 9, over raw sockets: the absolute-form request-target (RFC 9112 3.2.2), and
 * `Expect: 100-continue` on requests whose headers already decide a 413 or a 415.
 */
import { codeOf, messagesBody, SETUP, sidOf } from '../bodies.js';
import type { AttackCase, AttackContext, Outcome } from '../case.js';
import { probe, RawConn } from '../raw.js';

/** How long to wait for what the server sends before the body (ms). */
const PROBE_MS = 1_000;

/** A POST whose request-target is `target`. */
const postTo = (target: string, host: string, body: string): string =>
  `POST ${target} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

export const absoluteForm: AttackCase = {
  name: 'absolute-form',
  row: 8,
  summary: 'POST http://host/comet (absolute-form request-target), a setup then a request',
  target: 'echo',
  victim: 'echo',
  count: null,
  async run(ctx: AttackContext): Promise<Outcome> {
    const host = `${ctx.host}:${ctx.port}`;
    const url = `http://${host}/comet`;
    const conn = ctx.track(new RawConn(ctx.host, ctx.port, ctx.address(0)));
    const setup = await conn.request(postTo(url, host, SETUP), 5_000);
    const sid = sidOf(setup.body);
    let request = 'not tried';
    if (sid !== null) {
      const r = await conn.request(postTo(url, host, messagesBody(sid, 1, 0, ['hi'])), 5_000);
      request = codeOf(r.status, r.body);
    }
    const setupAnswer = codeOf(setup.status, setup.body);
    return {
      summary: `setup: ${setupAnswer}; request: ${request}`,
      sessions: sid === null ? 0 : 1,
      ownPass: setup.status === 200 && request === '200',
      figures: { setup: setupAnswer, request },
    };
  },
};

/** Headers that already decide the answer, each with the final status they must get. */
const DECIDED = [
  { what: 'body over the limit', status: 413, type: 'application/json', length: 70_000 },
  { what: 'wrong content type', status: 415, type: 'text/plain', length: 16 },
] as const;

export const expectContinue: AttackCase = {
  name: 'expect-continue',
  row: 9,
  summary: 'Expect: 100-continue with a body over the limit / a wrong content type: does 100 come before the 413/415?',
  target: 'echo',
  victim: 'echo',
  count: null,
  async run(ctx: AttackContext): Promise<Outcome> {
    const seen: string[] = [];
    let pass = true;
    const figures: Record<string, string> = {};
    for (const d of DECIDED) {
      const head = `POST /comet HTTP/1.1\r\nHost: ${ctx.host}:${ctx.port}\r\nContent-Type: ${d.type}\r\nContent-Length: ${d.length}\r\nExpect: 100-continue\r\n\r\n`;
      const p = ctx.track(await probe(ctx.host, ctx.port, ctx.address(0), head, PROBE_MS));
      let lines = [...p.lines];
      // Told to go on (or told nothing): send the body as a client would, and see what follows.
      if (lines[0] === 100 || lines.length === 0) lines = [...lines, ...(await p.more(d.type === 'text/plain' ? SETUP : 'x'.repeat(d.length), PROBE_MS))];
      p.destroy();
      const text = lines.length === 0 ? 'nothing' : lines.join(' then ');
      seen.push(`${d.what}: ${text}`);
      figures[String(d.status)] = text;
      if (lines[0] !== d.status) pass = false;
    }
    return { summary: seen.join('; '), sessions: 0, ownPass: pass, figures };
  },
};
