// The chat page: talks to pgfanout's hub with the JavaScript client (clients/js/pgfanout.js,
// served next to this page: see http.static in rules/chat.yaml), which keeps one WebSocket open,
// reconnects with backoff and resubscribes where it stood. Logged out, the connection is
// anonymous (only `register` and `login` work); after `login` it subscribes to user:<id>, whose
// backlog (unread messages) comes first, then live messages.
import { connect } from './pgfanout.js';

const $ = (id) => document.getElementById(id);

const state = {
  token: sessionStorage.getItem('chat.token'),
  user: JSON.parse(sessionStorage.getItem('chat.user') || 'null'), // {id, username}
  sub: null, // the subscription to user:<id>
  seen: new Set(), // message ids shown (a backlog row may also arrive live)
  highestShown: 0, // highest received message id shown and not yet acknowledged
};

// ---------------------------------------------------------------------------------------------
// Connection

function setConn(s, text) {
  const el = $('conn');
  el.dataset.state = s;
  el.textContent = text;
}

// The token is read before every connection: null (logged out) connects anonymously.
const hub = connect({ token: () => state.token });

hub.on('state', (s, info) => {
  if (s === 'connecting') setConn('connecting', 'connecting…');
  else if (s === 'open') setConn('open', 'connected');
  else if (s === 'reconnecting') {
    setConn('lost', `connection lost — reconnecting in ${(info.delay / 1000).toFixed(1)} s`);
  }
});

// The stored token expired or the secret changed: the connection carries on anonymously.
hub.on('unauthorized', () => {
  forget();
  hub.setToken(() => state.token, { reconnect: false });
  showError('Your session has expired; please log in again.');
});

hub.on('open', () => {
  if (!state.user) {
    showAuth();
  } else if (!state.sub) {
    enterChat().catch((e) => showError(describe(e)));
  } else {
    // Reconnected: the client subscribed again; the unread count may have changed meanwhile.
    loadProfile().catch(() => {});
  }
});

const call = (command, args = {}) => hub.call(command, args);

// ---------------------------------------------------------------------------------------------
// Errors

function describe(e) {
  switch (e.code) {
    case 'login_failed': return 'Wrong username or password.';
    case 'rate_limited': return 'Too many attempts; please wait a moment.';
    case 'unavailable': return 'The database is not reachable right now; try again shortly.';
    case 'timeout': return 'The server took too long; try again.';
    case 'unauthorized': return 'Please log in first.';
    default: return e.message;
  }
}

function showError(text) {
  const el = $('error');
  el.textContent = text;
  el.hidden = !text;
}

function guard(fn) {
  return async (ev) => {
    if (ev) ev.preventDefault();
    showError('');
    try {
      await fn(ev);
    } catch (e) {
      showError(describe(e));
    }
  };
}

// ---------------------------------------------------------------------------------------------
// Views

function showAuth() {
  $('auth-view').hidden = false;
  $('chat-view').hidden = true;
  $('who').hidden = true;
  $('logout').hidden = true;
}

async function enterChat() {
  $('auth-view').hidden = true;
  $('chat-view').hidden = false;
  $('who').hidden = false;
  $('who').textContent = state.user.username;
  $('logout').hidden = false;
  $('chat-view').dataset.ready = '';
  subscribe();
  await state.sub.ready();
  await Promise.all([loadProfile(), loadContacts()]);
  $('chat-view').dataset.ready = '1'; // profile and contacts are on the page
  acknowledge();
}

// user:<id>: its backlog (unread messages, as `message` events without an id), then live messages.
// After a reconnect the client resumes it from the last message's id; when it cannot (`resync`),
// subscribing again brings the unread backlog.
function subscribe() {
  state.sub = hub.subscribe(`user:${state.user.id}`, {
    on: { message: receive },
    onResync: (topic, reason) => {
      if (reason !== 'reconnected') resubscribe(); // after a reconnect the backlog came already
    },
    onError: (e) => showError(describe(e)),
  });
}

function resubscribe() {
  if (state.sub) state.sub.unsubscribe();
  if (state.user) subscribe();
}

function forget() {
  if (state.sub) state.sub.unsubscribe();
  state.sub = null;
  state.token = null;
  state.user = null;
  state.seen.clear();
  state.highestShown = 0;
  sessionStorage.removeItem('chat.token');
  sessionStorage.removeItem('chat.user');
  $('messages').replaceChildren();
  $('contacts').replaceChildren();
  $('friends').value = '';
  delete $('friends').dataset.edited;
}

async function loadProfile() {
  const rows = await call('profile');
  if (!rows.length) return;
  const p = rows[0];
  $('friends-only').checked = p.friends_only;
  // A list the user is editing is not overwritten by a profile that arrives meanwhile.
  if (!$('friends').dataset.edited) $('friends').value = (p.friends || []).join(', ');
  $('unread').textContent = String(p.unread);
}

async function loadContacts() {
  const rows = await call('contacts');
  const list = $('contacts');
  list.replaceChildren(...rows.map((c) => {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'contact';
    b.dataset.username = c.username;
    b.textContent = c.username + (c.is_friend ? ' ★' : '') + (c.friends_only ? ' (friends only)' : '');
    b.addEventListener('click', () => { $('to').value = c.username; $('body').focus(); });
    li.append(b);
    return li;
  }));
  if (!rows.length) {
    const li = document.createElement('li');
    li.className = 'hint';
    li.textContent = 'Nobody yet.';
    list.append(li);
  }
}

async function refreshUnread() {
  const rows = await call('unread_count');
  $('unread').textContent = String(rows[0].unread);
}

function addMessage({ id, dir, peer, body, at }) {
  const li = document.createElement('li');
  li.className = `message ${dir}`;
  if (id) li.dataset.id = String(id);
  const head = document.createElement('div');
  head.className = 'meta';
  head.textContent = (dir === 'in' ? `from ${peer}` : `to ${peer}`) +
    (at ? ` · ${new Date(at.replace(' ', 'T').replace(/\+00$/, 'Z')).toLocaleTimeString()}` : '');
  const text = document.createElement('div');
  text.className = 'body';
  text.textContent = body;
  li.append(head, text);
  const list = $('messages');
  list.append(li);
  list.scrollTop = list.scrollHeight;
}

// A message to me, from the backlog or live. Shown once (by id), then acknowledged.
function receive(m) {
  if (!m || m.id == null || state.seen.has(m.id)) return;
  state.seen.add(m.id);
  addMessage({ id: m.id, dir: 'in', peer: m.from_username, body: m.body, at: m.sent_at });
  state.highestShown = Math.max(state.highestShown, m.id);
  $('unread').textContent = String(Number($('unread').textContent) + 1);
  scheduleAck();
}

let ackTimer = null;
function scheduleAck() {
  clearTimeout(ackTimer);
  ackTimer = setTimeout(acknowledge, 150);
}

// Messages count as read once they were shown on a visible page.
async function acknowledge() {
  if (document.visibilityState !== 'visible' || !state.user || !state.highestShown) return;
  const upTo = state.highestShown;
  try {
    await call('mark_read', { up_to: upTo });
    if (state.highestShown === upTo) state.highestShown = 0;
    await refreshUnread();
  } catch (e) {
    if (e.code !== 'connection_lost') showError(describe(e));
  }
}
document.addEventListener('visibilitychange', acknowledge);

// ---------------------------------------------------------------------------------------------
// Actions

const formValues = (form) => Object.fromEntries(new FormData(form).entries());

// login: the connection is logged in, and the client uses the token for its next connections.
async function logIn(username, password) {
  const r = await hub.login(username, password);
  state.token = r.token;
  state.user = { id: String(r.claims.sub), username: r.claims.username };
  sessionStorage.setItem('chat.token', state.token);
  sessionStorage.setItem('chat.user', JSON.stringify(state.user));
}

$('login-form').addEventListener('submit', guard(async (ev) => {
  const { username, password } = formValues(ev.target);
  await logIn(username, password);
  ev.target.reset();
  await enterChat();
}));

$('register-form').addEventListener('submit', guard(async (ev) => {
  const { username, password, email } = formValues(ev.target);
  await call('register', { username, password, email });
  await logIn(username, password);
  ev.target.reset();
  await enterChat();
}));

$('logout').addEventListener('click', () => {
  forget();
  showError('');
  showAuth();
  hub.setToken(() => state.token); // a logged-in connection stays logged in: start an anonymous one
});

$('friends').addEventListener('input', () => {
  $('friends').dataset.edited = '1';
});

$('friends-form').addEventListener('submit', guard(async () => {
  const friends = $('friends').value.split(/[\s,]+/).filter(Boolean);
  const rows = await call('set_friends', { friends });
  $('friends').value = rows.map((r) => r.friend).join(', ');
  delete $('friends').dataset.edited;
  await loadContacts();
}));

$('friends-only').addEventListener('change', guard(async () => {
  const box = $('friends-only');
  try {
    const rows = await call('set_friends_only', { enabled: box.checked });
    box.checked = rows[0].friends_only;
  } catch (e) {
    box.checked = !box.checked;
    throw e;
  }
}));

$('refresh-contacts').addEventListener('click', guard(loadContacts));

$('send-form').addEventListener('submit', guard(async () => {
  const to = $('to').value.trim();
  const body = $('body').value;
  const rows = await call('send', { to, body });
  addMessage({ id: null, dir: 'out', peer: to, body, at: rows[0] && rows[0].sent_at });
  $('body').value = '';
}));

