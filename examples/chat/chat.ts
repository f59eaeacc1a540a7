/**
 * The chat demo's page script (bundled by scripts/build-client.mjs into dist/client/chat.js,
 * where the client import becomes `./comet-client.js`, the served bundle).
 *
 * What it shows of the client API: `send()` resolves when the server accepted the line (the
 * line goes from "pending" to "sent"), the line coming back as a packet marks it "delivered",
 * `state` drives the badge and the notice, and `open` with a `previousSid` means a new session
 * replaced a lost one (the room then sends its recent lines again).
 *
 * User text only ever reaches the page through `textContent`, so a message like
 * `<img src=x onerror=alert(1)>` shows as those characters and never becomes markup.
 */
import { CometClient, type CometClientState } from '../../lib/client/index.js';
import { isChatEvent, MAX_NICK_LENGTH, type ChatEvent, type ChatLine, type ChatRequest } from './protocol.js';

/** Delay (ms) before a client that gave up tries a fresh session. */
const RETRY_OFFLINE_MS = 5_000;

const byId = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`missing #${id}`);
  return el as T;
};

const status = byId<HTMLSpanElement>('status');
const nickname = byId<HTMLInputElement>('nickname');
const presence = byId<HTMLParagraphElement>('presence');
const list = byId<HTMLUListElement>('messages');
const composer = byId<HTMLFormElement>('composer');
const input = byId<HTMLInputElement>('message-input');
const notice = byId<HTMLParagraphElement>('notice');

/** What the status badge says for each client state. */
const LABELS: Record<CometClientState, string> = {
  idle: 'connecting',
  connecting: 'connecting',
  open: 'connected',
  reconnecting: 'reconnecting',
  closing: 'offline',
  closed: 'offline',
};

/** Where one of our own lines is: typed, accepted by the server, or back from the room. */
type Delivery = 'pending' | 'sent' | 'delivered' | 'failed';
const DELIVERY_LABELS: Record<Delivery, string> = {
  pending: 'pending',
  sent: 'sent',
  delivered: 'delivered',
  failed: 'not sent',
};

/** Our lines not back yet, by the id we gave them; ids are unique to this page. */
const ours = new Map<string, HTMLLIElement>();
const pageId = Array.from(crypto.getRandomValues(new Uint32Array(2)), (n) => n.toString(36)).join('');
let nextLine = 0;

const client = new CometClient(new URL('comet', document.baseURI).href, { reconnect: true });

nickname.value = loadNick();
nickname.addEventListener('change', () => {
  saveNick(nickname.value.trim());
  if (client.state === 'open') request({ type: 'join', nick: nick() });
});

const showState = (state: CometClientState): void => {
  const label = LABELS[state];
  status.textContent = label;
  status.dataset.state = label;
  status.dataset.sid = client.sid ?? '';
  if (state === 'reconnecting') {
    say('Connection lost, reconnecting. What you send meanwhile stays pending and goes out once it is back.');
  } else if (state === 'open') {
    say('');
  }
};

client.on('state', ({ state }) => showState(state));
client.on('open', ({ previousSid }) => {
  showState(client.state);
  // The server forgot our old session and what it held for it: mark the gap, then join again
  // (the room answers with its recent lines, which fill the gap as far as it remembers).
  if (previousSid !== null) separator('reconnected: lines sent while you were away may be missing here; the recent ones follow');
  request({ type: 'join', nick: nick() });
});
client.on('message', ({ data }) => {
  if (isChatEvent(data)) show(data);
});
client.on('close', ({ reason, willReconnect }) => {
  if (willReconnect || reason === 'closed') return;
  say(`Disconnected (${reason}): the server could not be reached. Trying again in ${RETRY_OFFLINE_MS / 1000} s.`);
  setTimeout(() => void connect(), RETRY_OFFLINE_MS);
});

composer.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (text === '') return;
  input.value = '';
  const id = `${pageId}-${++nextLine}`;
  const item = append({ nick: nick(), text });
  ours.set(id, item);
  mark(item, 'pending');
  client.send({ type: 'say', nick: nick(), text, id } satisfies ChatRequest).then(
    () => mark(item, 'sent'),
    (err: unknown) => {
      ours.delete(id);
      mark(item, 'failed');
      say(`Not sent: ${err instanceof Error ? err.message : String(err)}`);
    },
  );
});

// A tab going away ends its session now instead of after the server's inactivity timeout.
window.addEventListener('pagehide', () => void client.close());
// Back from the back/forward cache the page is alive again but its session was closed above.
window.addEventListener('pageshow', (event) => {
  if (event.persisted) void connect();
});

void connect();

async function connect(): Promise<void> {
  try {
    await client.connect();
  } catch {
    // The close listener reports it and schedules the next try.
  }
}

function request(req: ChatRequest): void {
  client.send(req).catch(() => {
    // A join lost with its session is sent again on the next `open`.
  });
}

function show(event: ChatEvent): void {
  switch (event.type) {
    case 'line': {
      const item = event.id === undefined ? undefined : ours.get(event.id);
      if (item === undefined) append(event);
      else {
        ours.delete(event.id ?? '');
        mark(item, 'delivered');
      }
      break;
    }
    case 'history':
      if (event.lines.length === 0) break;
      for (const line of event.lines) append(line).classList.add('history');
      separator('earlier lines above, from before you joined');
      break;
    case 'presence':
      presence.textContent = `In the room: ${event.nicks.join(', ')}`;
      break;
    case 'refused':
      say(`The chat refused a message: ${event.reason}`);
      break;
  }
}

function append(line: ChatLine): HTMLLIElement {
  const item = document.createElement('li');
  const who = document.createElement('span');
  who.className = 'nick';
  who.textContent = line.nick;
  const what = document.createElement('span');
  what.className = 'text';
  what.textContent = line.text;
  item.append(who, what);
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
  list.append(item);
  if (atBottom) list.scrollTop = list.scrollHeight;
  return item;
}

function mark(item: HTMLLIElement, delivery: Delivery): void {
  // A line can come back before the answer to its send: never go back from delivered.
  if (item.dataset.delivery === 'delivered') return;
  item.dataset.delivery = delivery;
  let badge = item.querySelector<HTMLSpanElement>('.delivery');
  if (badge === null) {
    badge = document.createElement('span');
    badge.className = 'delivery';
    item.append(badge);
  }
  badge.textContent = DELIVERY_LABELS[delivery];
}

function separator(text: string): void {
  const item = document.createElement('li');
  item.className = 'separator';
  item.textContent = text;
  list.append(item);
}

function say(text: string): void {
  notice.textContent = text;
}

function nick(): string {
  return nickname.value.trim().slice(0, MAX_NICK_LENGTH) || 'anonymous';
}

function loadNick(): string {
  try {
    const saved = localStorage.getItem('comet-chat-nick');
    if (saved !== null && saved !== '') return saved;
  } catch {
    // Storage may be disabled (private mode); a fresh nickname will do.
  }
  return `guest-${Math.floor(Math.random() * 10_000)}`;
}

function saveNick(nick: string): void {
  try {
    localStorage.setItem('comet-chat-nick', nick);
  } catch {
    // Not persisting the nickname is fine.
  }
}
