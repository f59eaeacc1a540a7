#!/usr/bin/env node
/**
 * `comet-fsm client <url>`: a command-line comet client for quick checks. Prints every packet
 * as one JSON line on stdout as it arrives, sends every stdin line as a message (parsed as JSON
 * when it is JSON, else as a string), and closes the session when stdin ends. Connection
 * events go to stderr so stdout stays machine-readable.
 *
 * With `--nick NAME` it is a member of the chat demo instead (examples/chat/protocol.ts): every
 * stdin line is said as NAME, every chat line received prints as `nick: text`, and what the chat
 * refuses or who is in the room goes to stderr.
 */
import { realpathSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { CometClient, CometClientError, type CometClientOptions } from '../lib/client/index.js';
import { treeMain } from './tree.js';
import { isChatEvent, MAX_NICK_LENGTH, type ChatEvent, type ChatRequest } from '../examples/chat/protocol.js';
import { sidTag } from '../lib/comet/sid_tag.js';

export const USAGE = `Usage: comet-fsm client <url> [options]
       comet-fsm tree <url> [--watch]   (see comet-fsm tree --help)

Connects to a comet-fsm endpoint (e.g. http://127.0.0.1:8080/comet), prints each packet as a
JSON line {"seq": N, "data": ...} on stdout, and sends each line read from stdin as a message.
A line that is valid JSON is sent as that value, any other line as a string.
When stdin ends, waits for the server to accept what was sent, closes the session and exits.

With --nick NAME, joins the chat demo (npm start) instead: each stdin line is said as NAME,
each chat line received prints as "nick: text" on stdout (the room's recent lines first);
who is in the room, and any line the chat refuses, are reported on stderr.

Options:
  --nick NAME      chat as NAME (1 to ${MAX_NICK_LENGTH} characters)
  --raw            send every line as a string, even if it is JSON (not with --nick)
  --no-reconnect   exit when the server ends the session (default: set up a new one)
  --retries N      after a failed request, retry it N times, then give up (default: never give up)
  --quiet          no connection events on stderr (refusals are still reported)
  -h, --help       this text

Exit status: 0 after a clean close, 1 if the connection was lost for good, 2 on bad usage.`;

/** Where the CLI reads and writes; the process's streams by default. */
export interface CliIo {
  readonly stdin: NodeJS.ReadableStream;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** Resolves when the process should stop (SIGINT/SIGTERM); never by default in tests. */
  readonly interrupted?: Promise<void>;
  /** Extra client options (tests inject short timings). */
  readonly clientOptions?: CometClientOptions;
}

/** Runs the CLI; resolves with the exit status. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  if (argv[0] === 'tree') {
    return treeMain(argv.slice(1), { stdout: io.stdout, stderr: io.stderr, env: process.env, ...(io.interrupted ? { interrupted: io.interrupted } : {}) });
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        nick: { type: 'string' },
        raw: { type: 'boolean' },
        'no-reconnect': { type: 'boolean' },
        retries: { type: 'string' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    io.stderr.write(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const [command, url, ...extra] = positionals;
  if (command !== 'client' || url === undefined || extra.length > 0 || !isHttpUrl(url)) {
    io.stderr.write(`${command === 'client' && url !== undefined ? `not an http(s) URL: ${url}\n\n` : ''}${USAGE}\n`);
    return 2;
  }
  let maxRetries = Infinity;
  if (values.retries !== undefined) {
    maxRetries = Number(values.retries);
    if (!Number.isSafeInteger(maxRetries) || maxRetries < 0) {
      io.stderr.write(`--retries must be a non-negative integer, got ${values.retries}\n`);
      return 2;
    }
  }
  const nick = values.nick;
  if (nick !== undefined && (nick.length === 0 || nick.length > MAX_NICK_LENGTH || values.raw === true)) {
    io.stderr.write(`--nick must be 1 to ${MAX_NICK_LENGTH} characters, and cannot go with --raw\n`);
    return 2;
  }
  const mode: Mode = nick === undefined ? { kind: 'json', raw: values.raw === true } : { kind: 'chat', nick };
  return runClient(url, io, mode, values.quiet === true, {
    reconnect: values['no-reconnect'] !== true,
    maxRetries,
    ...io.clientOptions,
  });
}

function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

/** What a stdin line becomes and how a packet prints: generic JSON lines, or a chat member. */
type Mode = { readonly kind: 'json'; readonly raw: boolean } | { readonly kind: 'chat'; readonly nick: string };

async function runClient(url: string, io: CliIo, mode: Mode, quiet: boolean, options: CometClientOptions): Promise<number> {
  const note = (text: string): void => {
    if (!quiet) io.stderr.write(`# ${text}\n`);
  };
  const client = new CometClient(url, options);
  let lost: string | undefined;
  const pending = new Set<Promise<void>>();
  const send = (data: unknown, what: string): void => {
    const sent = client.send(data).catch((e: unknown) => {
      // Not sent is not silent, even with --quiet.
      io.stderr.write(`not sent: ${what} (${e instanceof Error ? e.message : String(e)})\n`);
    });
    pending.add(sent);
    void sent.finally(() => pending.delete(sent));
  };
  const finished = new Promise<void>((resolve) => {
    client.on('close', ({ reason, sid, willReconnect, error }) => {
      note(`closed ${sid === null ? '-' : sidTag(sid)}: ${reason}${willReconnect ? ', setting up a new session' : ''}${error ? ` (${error.message})` : ''}`);
      if (willReconnect) return;
      if (reason !== 'closed') lost = reason;
      resolve();
    });
  });
  client.on('open', ({ sid, wait, previousSid }) => {
    // stderr is a log: sessions by their tag, never the sid (the session's credential).
    note(`open ${sidTag(sid)} (wait ${wait} ms)${previousSid === null ? '' : `; replaces ${sidTag(previousSid)}, whose undelivered packets are lost`}`);
    // A new session is a newcomer to the room: join (again) to be listed and get the recent lines.
    if (mode.kind === 'chat') send({ type: 'join', nick: mode.nick } satisfies ChatRequest, `join as ${mode.nick}`);
  });
  client.on('state', ({ state }) => note(`state ${state}`));
  client.on('error', (e) => note(`error ${e.code}: ${e.message}`));
  client.on('message', ({ seq, data }) => {
    if (mode.kind === 'json') io.stdout.write(`${JSON.stringify({ seq, data })}\n`);
    else if (isChatEvent(data)) showChatEvent(data, io, note);
    else note(`not a chat event: ${JSON.stringify(data)}`);
  });

  const lines = createInterface({ input: io.stdin, crlfDelay: Infinity });
  lines.on('line', (line) => {
    if (line.trim() === '') return;
    switch (mode.kind) {
      case 'json':
        send(mode.raw ? line : parseLine(line), line);
        break;
      case 'chat':
        send({ type: 'say', nick: mode.nick, text: line } satisfies ChatRequest, line);
        break;
    }
  });
  const stdinEnded = new Promise<void>((resolve) => lines.once('close', resolve));

  try {
    await client.connect();
  } catch (e) {
    note(`cannot connect: ${e instanceof Error ? e.message : String(e)}`);
    // The likeliest cause of a 404 at setup: the server's base URL instead of its endpoint.
    if (e instanceof CometClientError && e.serverCode === 'not_found') note('is the URL the comet endpoint? the demo and echo servers answer on /comet (http://HOST:PORT/comet)');
    lines.close();
    return 1;
  }
  const interrupted = io.interrupted ?? new Promise<never>(() => {});
  await Promise.race([stdinEnded.then(() => Promise.all(pending)), finished, interrupted]);
  lines.close();
  await client.close();
  return lost === undefined ? 0 : 1;
}

/** A chat event as a person reads it: lines on stdout, the rest on stderr. */
function showChatEvent(event: ChatEvent, io: CliIo, note: (text: string) => void): void {
  switch (event.type) {
    case 'line':
      io.stdout.write(`${event.nick}: ${event.text}\n`);
      break;
    case 'history':
      for (const line of event.lines) io.stdout.write(`${line.nick}: ${line.text}\n`);
      break;
    case 'presence':
      note(`in the room: ${event.nicks.join(', ')}`);
      break;
    case 'refused':
      // The server did not relay one of our lines: say so whatever --quiet says.
      io.stderr.write(`refused by the chat: ${event.reason}\n`);
      break;
  }
}

/** A line that is JSON is sent as that value; anything else as the string itself. */
function parseLine(line: string): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch {
    return line;
  }
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    // npm links bins through node_modules/.bin symlinks; compare real paths.
    return import.meta.url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

if (isMain()) {
  const interrupted = new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  const code = await main(process.argv.slice(2), {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    interrupted,
  });
  process.exit(code);
}
