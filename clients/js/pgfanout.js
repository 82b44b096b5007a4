// pgfanout: the JavaScript client of pgfanout's hub (docs/protocol.md). One ES module, no
// dependencies, for browsers and Node (18+: pass a WebSocket implementation, e.g. the `ws`
// package, where there is no global one).
//
//   import { connect } from './pgfanout.js';
//   const hub = connect({ url: 'https://chat.example.org', token: () => getToken() });
//   hub.subscribe('user:7', { on: { message: (data) => show(data) }, onResync: reload });
//   const rows = await hub.call('send', { to: 'bob', body: 'hi' });
//
// What it does for the application:
//  * one WebSocket (`/ws`), opened again after a drop with exponential backoff and jitter; the
//    token (a string or a callback, called before every connection) is sent in an `auth` message;
//  * every subscription is made again on the new connection and resumed after the last event
//    the application got. Ids stay opaque and are kept per topic: a WAL position ("0/16B3748") is
//    resumed with `subscribe` + `after`; an outbox id (an integer, durable rules) through a
//    catch-up SSE stream (`/events` with `Last-Event-ID`) that is read until it meets the new
//    WebSocket's live events, then closed. Events with an id are delivered once and in order
//    (duplicates around a switch are dropped by id);
//  * a topic that cannot be resumed (no id to resume from, a gap the server cannot fill, or the
//    server's own `resync`) gets `onResync`: the application reloads that topic's state;
//  * `call`, `publish` and `login` are promises; made while the connection is down, they wait
//    for the next one (up to `requestTimeout`); in flight when it drops, they fail with
//    `connection_lost` (they may or may not have run);
//  * when WebSockets cannot get through (the upgrade fails while an SSE stream opens), it falls
//    back to one SSE stream per subscription: events and resume still work, `call`, `publish`
//    and `login` fail with `unsupported`.

const VERSION = '0.1.0';

const DEFAULTS = {
  wsPath: '/ws',
  ssePath: '/events',
  transport: 'auto', // 'auto' | 'websocket' | 'sse'
  backoff: { initial: 500, max: 15000, factor: 2 },
  requestTimeout: 15000,
  dedupeWindow: 2000,
};

// Subscriptions that fail with these codes are dropped (not made again on the next connection).
const FATAL_SUBSCRIBE = new Set(['forbidden', 'invalid_topic', 'unauthorized', 'too_many_subscriptions', 'bad_message']);

/** An error of the hub (`code` is the protocol's error code) or of the connection. */
export class PgFanoutError extends Error {
  constructor(code, message, extra) {
    super(message || code);
    this.name = 'PgFanoutError';
    this.code = code;
    if (extra) Object.assign(this, extra);
  }
}

const isOutboxId = (id) => typeof id === 'number' || (typeof id === 'string' && /^[0-9]+$/.test(id));
const idKey = (id) => (isOutboxId(id) ? 'o' : 's') + String(id);

function globalOrUndefined(name) {
  return typeof globalThis !== 'undefined' ? globalThis[name] : undefined;
}

// Jittered exponential backoff: attempt 0 waits about `initial`, then doubling up to `max`; each
// delay is drawn from [d/2, d] so that clients cut off together do not come back together.
function backoffDelay(b, attempt) {
  const d = Math.min(b.max, b.initial * Math.pow(b.factor, attempt));
  return Math.round(d / 2 + Math.random() * (d / 2));
}

// ---------------------------------------------------------------------------------------------
// One SSE stream (`GET /events?topic=..`), read with fetch (headers: the token and Last-Event-ID)
// or, without a streaming fetch, with EventSource (the token and the id in the query string; the
// server must allow `?access_token=`). Calls onOpen(), onMessage(obj) for every `data:` that is
// JSON, onClose(error) once.

class SseStream {
  constructor(client, topics, lastEventId, handlers) {
    this.client = client;
    this.topics = topics;
    this.lastEventId = lastEventId;
    this.h = handlers;
    this.closed = false;
    this.opened = false;
    this.abort = null;
    this.es = null;
  }

  async start() {
    const c = this.client;
    let token;
    try {
      token = await c._getToken();
    } catch (e) {
      return this._end(new PgFanoutError('token_failed', String(e && e.message || e)));
    }
    if (this.closed) return;
    const q = this.topics.map((t) => 'topic=' + encodeURIComponent(t));
    const fetchImpl = c.opts.fetch || globalOrUndefined('fetch');
    const ES = c.opts.EventSource || globalOrUndefined('EventSource');
    const useFetch = fetchImpl && !c.opts.EventSource;
    if (!useFetch) {
      if (!ES) return this._end(new PgFanoutError('unsupported', 'no fetch and no EventSource'));
      if (token) q.push('access_token=' + encodeURIComponent(token));
      if (this.lastEventId != null) q.push('lastEventId=' + encodeURIComponent(String(this.lastEventId)));
      const es = new ES(c._httpUrl(c.opts.ssePath) + '?' + q.join('&'));
      this.es = es;
      es.onopen = () => { this.opened = true; if (this.h.onOpen) this.h.onOpen(); };
      es.onmessage = (ev) => this._data(ev.data);
      // EventSource reconnects by itself; the client does its own resuming, so close instead.
      es.onerror = () => this._end(new PgFanoutError('connection_lost', 'the SSE stream failed'));
      return;
    }
    const headers = { Accept: 'text/event-stream' };
    if (token) headers.Authorization = 'Bearer ' + token;
    if (this.lastEventId != null) headers['Last-Event-ID'] = String(this.lastEventId);
    const ac = typeof AbortController !== 'undefined' ? new AbortController() : null;
    this.abort = ac;
    let res;
    try {
      res = await fetchImpl(c._httpUrl(c.opts.ssePath) + '?' + q.join('&'), {
        headers, cache: 'no-store', signal: ac ? ac.signal : undefined,
      });
    } catch (e) {
      return this._end(new PgFanoutError('connection_lost', 'the SSE stream failed: ' + (e && e.message)));
    }
    if (this.closed) { try { ac && ac.abort(); } catch { /* closed */ } return; }
    if (!res.ok || !res.body) {
      let code = res.status === 401 ? 'unauthorized' : res.status === 403 ? 'forbidden' : 'connection_lost';
      let message = 'SSE: HTTP ' + res.status;
      try {
        const body = JSON.parse(await res.text());
        const e = body && (body.error || body);
        if (e && e.code) { code = e.code; message = e.message || message; }
      } catch { /* not JSON */ }
      return this._end(new PgFanoutError(code, message, { status: res.status }));
    }
    this.opened = true;
    if (this.h.onOpen) this.h.onOpen();
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    let data = [];
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.closed) break;
        buf += decoder.decode(value, { stream: true });
        let nl;
        while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
          if (line === '') {
            if (data.length) this._data(data.join('\n'));
            data = [];
          } else if (line.startsWith('data:')) {
            data.push(line.slice(line[5] === ' ' ? 6 : 5));
          } // id:, retry:, comments: the id is in the JSON too
          if (this.closed) break;
        }
      }
    } catch (e) {
      return this._end(new PgFanoutError('connection_lost', 'the SSE stream failed: ' + (e && e.message)));
    }
    this._end(new PgFanoutError('connection_lost', 'the SSE stream ended'));
  }

  _data(text) {
    if (this.closed) return;
    let msg;
    try { msg = JSON.parse(text); } catch { return; }
    if (msg && typeof msg === 'object') this.h.onMessage(msg);
  }

  _end(err) {
    if (this.closed) return;
    if (!this.opened) err.beforeOpen = true;
    this.close();
    if (this.h.onClose) this.h.onClose(err);
  }

  close() {
    this.closed = true;
    if (this.abort) { try { this.abort.abort(); } catch { /* gone */ } }
    if (this.es) { try { this.es.close(); } catch { /* gone */ } }
  }
}

// ---------------------------------------------------------------------------------------------

/** A subscription to one topic; `unsubscribe()` ends it. */
export class Subscription {
  constructor(client, topic, handlers, options) {
    this.client = client;
    this.topic = topic;
    this.handlers = typeof handlers === 'function' ? { onEvent: handlers } : (handlers || {});
    this.active = true;
    // Resuming: the last id delivered (opaque), and where a stream that carried this topic
    // stood (an outbox id): the point to resume from.
    this.lastId = options && options.after != null ? options.after : undefined;
    this.resumeFrom = this.lastId != null && isOutboxId(this.lastId) ? this.lastId : undefined;
    this.seen = new Set();
    this.seenOrder = [];
    this.live = false; // delivering on the current connection
    this.wasLive = this.lastId != null; // delivered on some connection: a gap needs resuming
    this.mode = 'idle'; // 'idle' | 'subscribing' | 'live' | 'catchup'
    this.group = null; // the catch-up group while mode === 'catchup'
    this.sse = null; // fallback mode: this topic's own stream
    this.sseAttempt = 0;
    this.sseTimer = null;
    this._readyWaiters = [];
  }

  /** Resolves once the subscription is acknowledged on the current connection. */
  ready() {
    if (this.live) return Promise.resolve();
    if (!this.active) return Promise.reject(this.error || new PgFanoutError('not_subscribed', 'unsubscribed'));
    return new Promise((resolve, reject) => this._readyWaiters.push({ resolve, reject }));
  }

  /** The last event id delivered (opaque: an outbox integer or a WAL position string). */
  get lastEventId() { return this.lastId; }

  unsubscribe() { this.client._unsubscribe(this); }

  _call(name, ...args) {
    const f = this.handlers[name];
    if (typeof f !== 'function') return;
    try { f.apply(this.handlers, args); } catch (e) { this.client._report(e); }
  }

  // An event for this topic: dropped when its id was delivered already.
  _deliver(msg) {
    if (!this.active) return;
    if (msg.id != null) {
      const k = idKey(msg.id);
      if (this.seen.has(k)) { this.client.stats.duplicates++; return; }
      this.seen.add(k);
      this.seenOrder.push(k);
      if (this.seenOrder.length > this.client.opts.dedupeWindow) this.seen.delete(this.seenOrder.shift());
      this.lastId = msg.id;
      this.wasLive = true;
    }
    this._call('onEvent', msg);
    const on = this.handlers.on;
    if (on && typeof on[msg.event] === 'function') {
      try { on[msg.event](msg.data, msg); } catch (e) { this.client._report(e); }
    }
  }

  _resync(reason) {
    if (!this.active) return;
    this.client.stats.resyncs++;
    this._call('onResync', this.topic, reason);
    this.client._emit('resync', this.topic, reason);
  }

  _acked() {
    this.live = true;
    this.wasLive = true;
    const w = this._readyWaiters;
    this._readyWaiters = [];
    for (const x of w) x.resolve();
    this._call('onSubscribed', this.topic);
  }

  _failed(err) {
    if (!this.active) this.error = err;
    const w = this._readyWaiters;
    this._readyWaiters = [];
    for (const x of w) x.reject(err);
    this._call('onError', err);
  }
}

/** The client: one logical connection to the hub, kept open. */
export class PgFanout {
  constructor(options = {}) {
    if (typeof options === 'string') options = { url: options };
    this.opts = { ...DEFAULTS, ...options, backoff: { ...DEFAULTS.backoff, ...(options.backoff || {}) } };
    const base = this.opts.url || (globalOrUndefined('location') ? globalOrUndefined('location').origin : null);
    if (!base) throw new PgFanoutError('bad_options', 'pgfanout: `url` is required outside a browser');
    // The base URL; a ws(s):// URL may name the WebSocket endpoint itself.
    let b = String(base).replace(/\/+$/, '');
    if (/^wss?:/.test(b) && b.endsWith(this.opts.wsPath)) b = b.slice(0, -this.opts.wsPath.length);
    this.base = b.replace(/^ws(s?):/, 'http$1:');
    this.token = options.token != null ? options.token : null;
    this.subs = new Map(); // topic -> Subscription
    this.listeners = new Map(); // name -> Set(fn)
    this.pending = new Map(); // ref -> {resolve, reject, timer}
    this.queue = []; // requests waiting for a connection: {msg, resolve, reject, timer}
    this.nextRef = 1;
    this.ws = null;
    this.wsLastInt = undefined; // the last outbox id received on the current WebSocket
    this.groups = new Set(); // catch-up groups of the current connection
    this.state = 'closed';
    this.attempt = 0;
    this.timer = null;
    this.closedByUser = false;
    this.transport = this.opts.transport === 'sse' ? 'sse' : 'websocket';
    this.wsFailures = 0;
    this.sseAnswered = false;
    this.gen = 0;
    // Counters, for tests and diagnostics.
    this.stats = { connections: 0, catchUps: 0, merged: 0, duplicates: 0, resyncs: 0 };
    // Connects once the caller had a chance to add listeners and subscriptions.
    if (options.autoConnect !== false) {
      Promise.resolve().then(() => { if (!this.closedByUser && this.state === 'closed') this.open(); });
    }
  }

  // --- events ---------------------------------------------------------------------------------

  /**
   * Listen to 'state' (state, info), 'open' (), 'close' (error), 'resync' (topic, reason),
   * 'error' (error: auth failures, errors without a request, exceptions in handlers).
   * Returns a function that removes the listener.
   */
  on(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name).add(fn);
    return () => this.listeners.get(name).delete(fn);
  }

  _emit(name, ...args) {
    const set = this.listeners.get(name);
    if (!set) return;
    for (const fn of [...set]) {
      try { fn(...args); } catch (e) { if (name !== 'error') this._report(e); }
    }
  }

  _report(e) {
    if (this.listeners.get('error') && this.listeners.get('error').size) this._emit('error', e);
    else if (typeof console !== 'undefined') console.error('pgfanout:', e);
  }

  _setState(state, info) {
    this.state = state;
    this._emit('state', state, info || {});
  }

  // --- connection -----------------------------------------------------------------------------

  _httpUrl(path) { return this.base + path; }
  _wsUrl() { return this.base.replace(/^http/, 'ws') + this.opts.wsPath; }

  async _getToken() {
    const t = this.token;
    return typeof t === 'function' ? await t() : t;
  }

  /** Opens the connection (done by `connect()` unless `autoConnect: false`). */
  open() {
    this.closedByUser = false;
    if (this.state === 'closed') this._connect();
    return this;
  }

  /** Closes for good: no reconnect; waiting and pending requests fail. */
  close() {
    this.closedByUser = true;
    clearTimeout(this.timer);
    this._teardown(new PgFanoutError('closed', 'the client was closed'));
    for (const q of this.queue.splice(0)) { clearTimeout(q.timer); q.reject(new PgFanoutError('closed', 'the client was closed')); }
    for (const s of this.subs.values()) this._stopSseSub(s);
    this._setState('closed');
  }

  /** Drops the current connection and opens a new one now (e.g. after a token change). */
  reconnect() {
    clearTimeout(this.timer);
    this._teardown(new PgFanoutError('connection_lost', 'reconnecting'));
    if (this.transport === 'sse') for (const s of this.subs.values()) this._stopSseSub(s);
    this.attempt = 0;
    if (!this.closedByUser) this._connect();
  }

  /**
   * A new token (string, callback or null for anonymous), used from the next connection on;
   * reconnects now so that it takes effect, unless `{ reconnect: false }`.
   */
  setToken(token, { reconnect = true } = {}) {
    this.token = token;
    if (reconnect) this.reconnect();
  }

  /** Resolves when the connection is open (and authenticated, with a token). */
  ready() {
    if (this.state === 'open') return Promise.resolve();
    return new Promise((resolve) => {
      const off = this.on('open', () => { off(); resolve(); });
    });
  }

  _connect() {
    if (this.closedByUser) return;
    const gen = ++this.gen;
    this._setState('connecting', { attempt: this.attempt, transport: this.transport });
    if (this.transport === 'sse') return this._connectSse(gen);
    const WS = this.opts.WebSocket || globalOrUndefined('WebSocket');
    if (!WS) {
      if (this.opts.transport === 'auto') { this.transport = 'sse'; return this._connectSse(gen); }
      this._report(new PgFanoutError('unsupported', 'pgfanout: no WebSocket implementation (pass options.WebSocket)'));
      this._setState('closed');
      return;
    }
    let ws;
    try {
      ws = new WS(this._wsUrl());
    } catch (e) {
      return this._lost(gen, new PgFanoutError('connection_lost', String(e && e.message || e)), false);
    }
    this.ws = ws;
    this.wsLastInt = undefined;
    let opened = false;
    ws.onopen = async () => {
      if (gen !== this.gen) return;
      opened = true;
      this.wsFailures = 0;
      this.sseAnswered = false;
      let token = null;
      try {
        token = await this._getToken();
      } catch (e) {
        this._report(new PgFanoutError('token_failed', 'the token callback failed: ' + (e && e.message || e)));
      }
      if (gen !== this.gen) return;
      if (token) {
        try {
          await this._request({ type: 'auth', token }, true);
        } catch (e) {
          if (gen !== this.gen) return;
          if (e.code === 'connection_lost') return;
          // Carry on anonymously; the application decides (log in again, a new token).
          this._emit('error', e);
          this._emit('unauthorized', e);
        }
      }
      if (gen !== this.gen) return;
      this.attempt = 0;
      this.stats.connections++;
      this._setState('open', { transport: 'websocket' });
      this._emit('open');
      this._resubscribeAll();
      this._flushQueue();
    };
    ws.onmessage = (ev) => {
      if (gen !== this.gen) return;
      const text = typeof ev.data === 'string' ? ev.data : String(ev.data);
      let msg;
      try { msg = JSON.parse(text); } catch { return; }
      if (msg && typeof msg === 'object') this._onWsMessage(msg);
    };
    ws.onerror = () => { /* onclose follows */ };
    ws.onclose = (ev) => {
      if (gen !== this.gen) return;
      this._lost(gen, new PgFanoutError('connection_lost', 'the connection was lost' + (ev && ev.code ? ' (' + ev.code + ')' : ''), { closeCode: ev && ev.code }), opened);
    };
  }

  // The connection of generation `gen` ended: clean up, schedule the next attempt.
  _lost(gen, err, wasOpen) {
    if (gen !== this.gen) return;
    this._teardown(err);
    if (this.closedByUser) return;
    if (!wasOpen && this.transport === 'websocket' && this.opts.transport === 'auto') this.wsFailures++;
    const delay = backoffDelay(this.opts.backoff, this.attempt++);
    this._setState('reconnecting', { delay, attempt: this.attempt, error: err });
    this._emit('close', err);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this._nextAttempt(), delay);
  }

  async _nextAttempt() {
    // WebSockets failed twice before opening: when an SSE stream gets through, they are blocked
    // on the way (a proxy) rather than the server being down: fall back to SSE.
    // (A server that has just come back up answers too: only a second such round falls back.)
    if (this.transport === 'websocket' && this.opts.transport === 'auto' && this.wsFailures >= 2 && this.subs.size) {
      const ok = await this._probeSse();
      if (this.closedByUser) return;
      if (ok && this.sseAnswered) { this.transport = 'sse'; this._emit('fallback', 'sse'); }
      this.sseAnswered = ok;
    }
    this._connect();
  }

  _probeSse() {
    const topic = this.subs.keys().next().value;
    return new Promise((resolve) => {
      const s = new SseStream(this, [topic], null, {
        onOpen: () => { s.close(); resolve(true); },
        onMessage: () => {},
        onClose: (e) => resolve(e && (e.code === 'forbidden' || e.code === 'unauthorized')),
      });
      s.start();
    });
  }

  // Ends the current connection: the socket, the catch-up streams, requests in flight.
  _teardown(err) {
    this.gen++;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(); } catch { /* gone */ }
    }
    for (const g of this.groups) { clearTimeout(g.retry); g.sse.close(); }
    this.groups.clear();
    for (const s of this.subs.values()) {
      s.live = false;
      if (s.mode !== 'idle') s.mode = 'idle';
      s.group = null;
    }
    for (const [ref, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new PgFanoutError('connection_lost', 'the connection was lost before the reply', { cause: err }));
      this.pending.delete(ref);
    }
  }

  // --- requests -------------------------------------------------------------------------------

  _request(msg, immediate) {
    return new Promise((resolve, reject) => {
      if (this.transport === 'sse' && !immediate) {
        reject(new PgFanoutError('unsupported', msg.type + ' needs a WebSocket; this client fell back to SSE'));
        return;
      }
      const item = { msg, resolve, reject, timer: null };
      item.timer = setTimeout(() => {
        const i = this.queue.indexOf(item);
        if (i >= 0) this.queue.splice(i, 1);
        if (item.ref != null) this.pending.delete(item.ref);
        reject(new PgFanoutError('timeout', 'no reply within ' + this.opts.requestTimeout + ' ms'));
      }, this.opts.requestTimeout);
      if (immediate || this.state === 'open') this._send(item);
      else this.queue.push(item);
    });
  }

  _send(item) {
    if (!this.ws || this.ws.readyState !== 1) {
      clearTimeout(item.timer);
      item.reject(new PgFanoutError('connection_lost', 'not connected'));
      return;
    }
    const ref = this.nextRef++;
    item.ref = ref;
    this.pending.set(ref, item);
    this.ws.send(JSON.stringify({ ...item.msg, ref }));
  }

  _flushQueue() {
    for (const item of this.queue.splice(0)) this._send(item);
  }

  /** Runs a command of the config; resolves with its rows (an array of objects). */
  call(command, args = {}) {
    return this._request({ type: 'call', command, args });
  }

  /** Publishes `data` on a topic (through PostgreSQL); resolves once the NOTIFY was taken. */
  publish(topic, data) {
    return this._request({ type: 'publish', topic, data }).then(() => undefined);
  }

  /**
   * Logs in with `auth.login`; resolves with {token, expires_in, claims}. The connection is
   * logged in, and the token is used for the next connections (it replaces `token`).
   */
  async login(username, password) {
    const r = await this._request({ type: 'login', username, password });
    if (r && r.token) this.token = r.token;
    return r;
  }

  /** Round trip to the server. */
  ping() {
    return this._request({ type: 'ping' }).then(() => undefined);
  }

  // --- subscriptions --------------------------------------------------------------------------

  /**
   * Subscribes to a topic. `handlers`: a function (every event), or
   * { onEvent(ev), on: {NAME(data, ev)}, onResync(topic, reason), onSubscribed(topic), onError(err) }.
   * `options.after`: an id the application already has (resume after it).
   */
  subscribe(topic, handlers, options) {
    if (this.subs.has(topic)) throw new PgFanoutError('already_subscribed', 'already subscribed to ' + topic);
    const s = new Subscription(this, topic, handlers, options);
    this.subs.set(topic, s);
    if (this.transport === 'sse') this._startSseSub(s);
    else if (this.state === 'open') {
      if (s.wasLive && isOutboxId(s.lastId)) this._catchUp(String(s.resumeFrom), [s]);
      else this._subscribeOne(s);
    }
    return s;
  }

  /** The subscription of a topic, if any. */
  subscription(topic) { return this.subs.get(topic); }

  _unsubscribe(s) {
    if (!s.active) return;
    s.active = false;
    this.subs.delete(s.topic);
    this._stopSseSub(s);
    if (s.group) this._leaveGroup(s);
    if (this.state === 'open' && this.transport === 'websocket' && s.mode !== 'idle') {
      this._request({ type: 'unsubscribe', topic: s.topic }, true).catch(() => {});
    }
    s.mode = 'idle';
    s.live = false;
  }

  // Every subscription again, on a new connection: resumed where each one stood.
  _resubscribeAll() {
    const groups = new Map(); // resume point -> [subs]
    for (const s of this.subs.values()) {
      if (s.wasLive && s.lastId != null && isOutboxId(s.lastId) && s.resumeFrom != null) {
        const k = String(s.resumeFrom);
        if (!groups.has(k)) groups.set(k, []);
        groups.get(k).push(s);
      } else {
        this._subscribeOne(s);
      }
    }
    for (const [from, subs] of groups) this._catchUp(from, subs);
  }

  // A plain subscribe on the WebSocket (with `after` for a WAL position).
  _subscribeOne(s, { buffered } = {}) {
    const msg = { type: 'subscribe', topic: s.topic };
    let gap = false;
    if (!buffered) {
      if (s.lastId != null && !isOutboxId(s.lastId)) msg.after = s.lastId;
      else if (s.wasLive) gap = true; // nothing to resume from: events may have been missed
      s.mode = 'subscribing';
    }
    this._request(msg, true).then(
      () => {
        if (!s.active) return;
        if (!buffered) s.mode = 'live';
        s._acked();
        if (s.group) this._groupAcked(s.group, s);
        if (gap) s._resync('reconnected');
      },
      (e) => {
        if (!s.active || e.code === 'connection_lost') return;
        if (FATAL_SUBSCRIBE.has(e.code)) {
          s.active = false;
          this.subs.delete(s.topic);
          if (s.group) this._leaveGroup(s);
        } else if (!buffered) {
          s.mode = 'live'; // e.g. on_subscribe_failed: subscribed, without the backlog
          s._acked();
        } else if (s.group) {
          this._groupAcked(s.group, s); // subscribed all the same: its live events come
        }
        s._failed(e);
      },
    );
  }

  // Outbox resume over a WebSocket: subscribe now (its durable events are kept back), and read a
  // catch-up SSE stream from the resume point; when both have delivered the same event the
  // streams have met: the kept-back events not yet delivered follow, and the SSE stream closes.
  _catchUp(from, subs) {
    const g = { from, subs: new Set(subs), acked: new Set(), ackedAll: false, buffer: [], wsIds: new Set(), sseIds: new Set(), sse: null, failures: 0, retry: null };
    this.groups.add(g);
    this.stats.catchUps++;
    for (const s of subs) {
      s.mode = 'catchup';
      s.group = g;
      this._subscribeOne(s, { buffered: true });
    }
    this._startGroupSse(g, this.gen);
  }

  _startGroupSse(g, gen) {
    g.sse = new SseStream(this, [...g.subs].map((s) => s.topic), g.from, {
      onMessage: (msg) => this._onGroupSse(g, msg),
      onClose: (err) => {
        if (gen !== this.gen || !this.groups.has(g)) return;
        if (err.beforeOpen) {
          // Refused (401, 403), or twice no answer while the WebSocket is up (e.g. a page on
          // another origin: the hub sends no CORS headers): the topics are reloaded instead.
          // (A server that went away drops the WebSocket too, which reconnects.)
          if (err.status || ++g.failures >= 2) {
            for (const s of [...g.subs]) { this._leaveGroup(s); s._resync('resume_failed'); }
          } else {
            g.retry = setTimeout(() => {
              if (gen === this.gen && this.groups.has(g)) this._startGroupSse(g, gen);
            }, backoffDelay(this.opts.backoff, 0));
          }
          return;
        }
        // The catch-up stream broke: start over on a new connection.
        if (this.ws) this._lost(gen, err, true);
      },
    });
    g.sse.start();
  }

  // From now on the WebSocket carries every event of the group's topics (each acknowledged).
  _groupAcked(g, s) {
    g.acked.add(s);
    this._checkAcked(g);
  }

  _checkAcked(g) {
    if (!g.ackedAll && [...g.subs].every((t) => g.acked.has(t))) g.ackedAll = true;
  }

  _onGroupSse(g, msg) {
    if (!this.groups.has(g)) return;
    const s = this.subs.get(msg.topic);
    if (msg.type === 'resync') {
      if (s && g.subs.has(s)) { this._leaveGroup(s); s._resync('server'); }
      return;
    }
    if (msg.type === 'error') { this._report(new PgFanoutError(msg.code, msg.message)); return; }
    if (msg.type !== 'event' || msg.id == null || !s || !g.subs.has(s)) return; // rows come on the WebSocket
    if (isOutboxId(msg.id)) for (const t of g.subs) t.resumeFrom = msg.id;
    s._deliver(msg);
    const k = idKey(msg.id);
    g.sseIds.add(k);
    if (g.wsIds.has(k)) this._merge(g);
  }

  // A durable event of a catching-up topic on the WebSocket.
  _onGroupWs(g, s, msg) {
    const k = idKey(msg.id);
    g.buffer.push({ s, msg });
    if (g.ackedAll) {
      g.wsIds.add(k);
      if (g.sseIds.has(k)) this._merge(g);
    }
  }

  _merge(g) {
    this.groups.delete(g);
    this.stats.merged++;
    clearTimeout(g.retry);
    g.sse.close();
    for (const s of g.subs) { s.mode = 'live'; s.group = null; s.resumeFrom = this.wsLastInt; }
    for (const { s, msg } of g.buffer) if (s.active) s._deliver(msg);
  }

  // One topic leaves its catch-up group (resync, unsubscribe): what the WebSocket kept back for
  // it is delivered and it goes on live.
  _leaveGroup(s) {
    const g = s.group;
    if (!g) return;
    g.subs.delete(s);
    s.group = null;
    if (s.active) {
      s.mode = 'live';
      if (this.wsLastInt !== undefined) s.resumeFrom = this.wsLastInt;
      for (const b of g.buffer) if (b.s === s) s._deliver(b.msg);
    }
    g.buffer = g.buffer.filter((b) => b.s !== s);
    if (!g.subs.size) { this.groups.delete(g); clearTimeout(g.retry); g.sse.close(); }
    else this._checkAcked(g);
  }

  _onWsMessage(msg) {
    switch (msg.type) {
      case 'ack':
      case 'pong':
      case 'error': {
        const p = msg.ref != null ? this.pending.get(msg.ref) : null;
        if (!p) {
          if (msg.type === 'error') this._emit('error', new PgFanoutError(msg.code, msg.message));
          return;
        }
        this.pending.delete(msg.ref);
        clearTimeout(p.timer);
        if (msg.type === 'error') p.reject(new PgFanoutError(msg.code, msg.message));
        else p.resolve(msg.result);
        return;
      }
      case 'event': {
        const s = this.subs.get(msg.topic);
        if (msg.id != null && isOutboxId(msg.id)) {
          this.wsLastInt = msg.id;
          for (const t of this.subs.values()) if (t.mode === 'live') t.resumeFrom = msg.id;
        }
        if (!s || s.mode === 'idle') return;
        if (s.mode === 'catchup' && s.group && msg.id != null) return this._onGroupWs(s.group, s, msg);
        s._deliver(msg);
        return;
      }
      case 'resync': {
        const s = this.subs.get(msg.topic);
        if (s) s._resync('server');
        return;
      }
      default:
    }
  }

  // --- SSE fallback: one stream per subscription ----------------------------------------------

  _connectSse(gen) {
    if (gen !== this.gen) return;
    this.attempt = 0;
    this._setState('open', { transport: 'sse' });
    this._emit('open');
    for (const s of this.subs.values()) if (!s.sse) this._startSseSub(s);
    for (const q of this.queue.splice(0)) {
      clearTimeout(q.timer);
      q.reject(new PgFanoutError('unsupported', q.msg.type + ' needs a WebSocket; this client fell back to SSE'));
    }
  }

  _startSseSub(s) {
    if (!s.active || this.closedByUser) return;
    const from = s.lastId != null ? s.lastId : null;
    const gap = s.wasLive && from == null;
    const stream = new SseStream(this, [s.topic], from, {
      onOpen: () => {
        s.sseAttempt = 0;
        s.mode = 'live';
        s._acked();
        if (gap) s._resync('reconnected');
      },
      onMessage: (msg) => {
        if (msg.topic !== s.topic) return;
        if (msg.type === 'event') s._deliver(msg);
        else if (msg.type === 'resync') s._resync('server');
        else if (msg.type === 'error') s._call('onError', new PgFanoutError(msg.code, msg.message));
      },
      onClose: (err) => {
        if (s.sse !== stream) return;
        s.sse = null;
        s.live = false;
        if (!s.active || this.closedByUser) return;
        if (err.code === 'forbidden' || err.code === 'invalid_topic') {
          s.active = false;
          this.subs.delete(s.topic);
          s._failed(err);
          return;
        }
        const delay = backoffDelay(this.opts.backoff, s.sseAttempt++);
        s.sseTimer = setTimeout(() => this._startSseSub(s), delay);
      },
    });
    s.sse = stream;
    stream.start();
  }

  _stopSseSub(s) {
    clearTimeout(s.sseTimer);
    if (s.sse) { const x = s.sse; s.sse = null; x.close(); }
  }
}

/** Creates a client and connects it. `options.url`: the daemon's base URL (default: the page's origin). */
export function connect(options) {
  return new PgFanout(options);
}

export { VERSION };
export default connect;
