/**
 * The chat demo's page script (bundled by scripts/build-client.mjs into dist/client/chat.js,
 * where the client import becomes `./comet-client.js`, the served bundle).
 *
 * User text only ever reaches the page through `textContent`, so a message like
 * `<img src=x onerror=alert(1)>` shows as those characters and never becomes markup.
 */
import { CometClient, type CometClientState } from '../../lib/client/index.js';
import { isChatLine, MAX_NICK_LENGTH, type ChatLine } from './protocol.js';

/** Delay (ms) before a client that gave up tries a fresh session. */
const RETRY_OFFLINE_MS = 5_000;

const byId = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`missing #${id}`);
  return el as T;
};

const status = byId<HTMLSpanElement>('status');
const nickname = byId<HTMLInputElement>('nickname');
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

nickname.value = loadNick();
nickname.addEventListener('change', () => saveNick(nickname.value.trim()));

const client = new CometClient(new URL('comet', document.baseURI).href, { reconnect: true });

const showState = (state: CometClientState): void => {
  const label = LABELS[state];
  status.textContent = label;
  status.dataset.state = label;
  status.dataset.sid = client.sid ?? '';
};

client.on('state', ({ state }) => showState(state));
client.on('open', ({ previousSid }) => {
  showState(client.state);
  if (previousSid !== null) say('The connection was lost for a while; messages sent meanwhile may be missing.');
  else say('');
});
client.on('message', ({ data }) => {
  if (isChatLine(data)) append(data);
});
client.on('close', ({ reason, willReconnect }) => {
  if (willReconnect || reason === 'closed') return;
  say(`Disconnected (${reason}); trying again shortly.`);
  setTimeout(() => void connect(), RETRY_OFFLINE_MS);
});

composer.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (text === '') return;
  input.value = '';
  const nick = nickname.value.trim().slice(0, MAX_NICK_LENGTH) || 'anonymous';
  client.send({ nick, text }).catch((err: unknown) => {
    say(`Not sent: ${err instanceof Error ? err.message : String(err)}`);
  });
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

function append(line: ChatLine): void {
  const item = document.createElement('li');
  const who = document.createElement('span');
  who.className = 'nick';
  who.textContent = line.nick;
  const what = document.createElement('span');
  what.textContent = line.text;
  item.append(who, what);
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
  list.append(item);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function say(text: string): void {
  notice.textContent = text;
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
