// The JavaScript client (clients/js/pgfanout.js) in chromium against the real daemon: a test page
// (client-web/) imports it from the daemon's second `http.static` directory. The test runs its
// own daemon (client.yaml) on its own database, so that it can kill and restart it, and a TCP
// proxy in front of it that cuts every connection on demand.
//
//   * a daemon killed (SIGKILL) and started again on the same port while durable events flow:
//     each is delivered exactly once, in commit order;
//   * connections cut (three times, once during the catch-up of the previous cut): the same;
//   * a non-durable topic gets `onResync` after the gap, the durable ones (outbox ids, WAL
//     positions) do not;
//   * resuming from an id the application kept; a topic that needs a token;
//   * call, publish, login, errors, and a token callback called again for each connection;
//   * a page on another origin (resync instead of a catch-up); SSE only; the fallback to SSE
//     when a proxy refuses WebSocket upgrades; the client in Node (SSE, and WebSocket with ws).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { launch, waitFor, artifacts } from './support.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const bin = process.env.PGFANOUT_BIN || path.join(root, 'build/pgfanout');
const secret = process.env.PGFANOUT_JWT_SECRET;
const config = path.join(here, 'client.yaml');
const dbName = `pgfanout_client_${process.pid}`;
const dsn = `${process.env.PGFANOUT_TEST_DSN} dbname=${dbName}`;
const slot = `pgfanout_client_${process.pid}`;

const psql = (conn, query) =>
  execFileSync('psql', [conn, '-v', 'ON_ERROR_STOP=1', '-qAtc', query], { encoding: 'utf8' }).trim();
const sql = (query) => psql(dsn, query);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const env = (port) => ({
  ...process.env,
  PGFANOUT_DSN: dsn,
  PGFANOUT_HTTP: `127.0.0.1:${port}`,
  PGFANOUT_STATIC: path.join(here, 'client-web'),
  PGFANOUT_CLIENT_JS: path.join(root, 'clients/js'),
  PGFANOUT_WAL_SLOT: slot,
});

// The daemon on `port`; its output is appended to artifacts/client-daemon.log.
const log = createWriteStream(path.join(artifacts, 'client-daemon.log'), { flags: 'w' });
async function startDaemon(port) {
  const child = spawn(bin, ['run', '--config', config], { env: env(port), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const take = (d) => { out += d; log.write(d); };
  child.stdout.on('data', take);
  child.stderr.on('data', take);
  await waitFor(() => out.includes('ready') || child.exitCode !== null, { timeout: 15000 });
  if (child.exitCode !== null) throw new Error(`the daemon exited: ${out}`);
  return child;
}
function kill(child, signal = 'SIGKILL') {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

// A TCP proxy to the daemon; cut() closes every connection through it (new ones still work).
// With blockWebSockets, a connection whose request asks for a WebSocket upgrade is closed (a
// proxy on the way that lets plain HTTP through only).
function startProxy(target, { blockWebSockets = false } = {}) {
  const sockets = new Set();
  const server = net.createServer((c) => {
    if (blockWebSockets) {
      c.once('data', (first) => {
        if (/^upgrade:\s*websocket/im.test(first.toString('latin1'))) return c.destroy();
        c.pause();
        c.unshift(first);
        pipe(c);
      });
      return;
    }
    pipe(c);
  });
  function pipe(c) {
    const u = net.connect(target, '127.0.0.1');
    sockets.add(c);
    sockets.add(u);
    const done = () => {
      c.destroy();
      u.destroy();
      sockets.delete(c);
      sockets.delete(u);
    };
    c.on('error', done).on('close', done);
    u.on('error', done).on('close', done);
    c.pipe(u);
    u.pipe(c);
  }
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: server.address().port,
        cut() { for (const s of sockets) s.destroy(); },
        close() { for (const s of sockets) s.destroy(); server.close(); },
      }));
  });
}

// Durable events: `n` rows inserted one transaction each, `gapMs` apart, by one psql in the
// background, into client_test.items (outbox ids; `owner` for topic mine:OWNER) or
// client_test.wal_items (WAL positions). Resolves when the last one is committed.
function produce(prefix, n, gapMs, { table = 'items', owner = null } = {}) {
  const cols = owner ? `(v, owner) VALUES ('${prefix}-' || i, '${owner}')` : `(v) VALUES ('${prefix}-' || i)`;
  const body = `DO $$ BEGIN FOR i IN 1..${n} LOOP ` +
    `INSERT INTO client_test.${table} ${cols}; COMMIT; ` +
    `PERFORM pg_sleep(${gapMs / 1000}); END LOOP; END $$;`;
  return new Promise((resolve, reject) => {
    const p = spawn('psql', [dsn, '-v', 'ON_ERROR_STOP=1', '-qc', body], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => { err += d; });
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`psql: ${err}`))));
  });
}
// The rows of `prefix`, in commit order (one transaction each, one after the other: id order).
const committed = (prefix, table = 'items') =>
  sql(`SELECT id FROM client_test.${table} WHERE v LIKE '${prefix}-%' ORDER BY id`).split('\n').filter(Boolean).map(Number);

// The row ids of `prefix` the page's application got on a topic, in the order it got them.
const delivered = (page, prefix, topic = 'items') =>
  page.evaluate(([p, t]) => (window.t.events[t] || []).filter((e) => String(e.data.v).startsWith(`${p}-`)).map((e) => e.data.id), [prefix, topic]);

async function expectExactlyOnce(page, prefix, { topic = 'items', table = 'items' } = {}) {
  const want = committed(prefix, table);
  assert.ok(want.length > 0);
  await waitFor(async () => (await delivered(page, prefix, topic)).length >= want.length, { timeout: 30000 });
  await sleep(1000); // a duplicate would come now
  assert.deepEqual(await delivered(page, prefix, topic), want, `every durable event of ${topic} once, in commit order`);
}

function jwt(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ ...claims, exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

let browser;
let daemon;
let port;
let proxy;
let annId;

before(async () => {
  psql(process.env.PGFANOUT_TEST_DSN, `CREATE DATABASE ${dbName}`);
  execFileSync('psql', [dsn, '-v', 'ON_ERROR_STOP=1', '-q', '-f', path.join(root, 'examples/chat/schema.sql')]);
  sql('CREATE SCHEMA client_test; ' +
    'CREATE TABLE client_test.items (id bigserial PRIMARY KEY, v text NOT NULL, owner text); ' +
    'CREATE TABLE client_test.wal_items (id bigserial PRIMARY KEY, v text NOT NULL)');
  annId = sql("SELECT user_id FROM chat.register('ann', 'secret-ann', 'ann@example.org')");
  execFileSync(bin, ['install', '--config', config], { env: env(0), stdio: 'ignore' });
  port = await freePort();
  daemon = await startDaemon(port);
  proxy = await startProxy(port);
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (proxy) proxy.close();
  if (daemon) await kill(daemon, 'SIGTERM');
  log.end();
  try {
    sql(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '${slot}'`);
  } catch { /* left */ }
  try { psql(process.env.PGFANOUT_TEST_DSN, `DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`); } catch { /* left */ }
});

async function openPage(url, options = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  page.on('console', (m) => { if (m.type() === 'error') console.error('page console:', m.text()); });
  await page.goto(url);
  await page.locator('#state[data-state="ready"]').waitFor();
  await page.evaluate((o) => window.t.connect(o), options);
  await page.locator('#state[data-state="open"]').waitFor();
  return page;
}
const states = (page) => page.evaluate(() => window.t.states);
const stats = (page) => page.evaluate(() => window.t.hub.stats);

test('a daemon restart while durable events flow: each delivered once, in order', async () => {
  const page = await openPage(`http://127.0.0.1:${port}/`);
  await page.evaluate(() => window.t.subscribe('items'));
  const done = produce('restart', 150, 20);
  await sleep(1000);
  assert.ok((await delivered(page, 'restart')).length > 0, 'events flow before the restart');
  await kill(daemon);
  await sleep(800);
  daemon = await startDaemon(port);
  await done;
  await expectExactlyOnce(page, 'restart');
  console.log('restart:', JSON.stringify(await stats(page)));
  assert.ok((await stats(page)).catchUps >= 1, 'resumed through a catch-up stream');
  assert.ok((await states(page)).includes('reconnecting'), 'the connection was lost and opened again');
  await page.context().close();
});

test('dropped connections (one during the catch-up of the last): each durable event once, in order; resync for the non-durable topic', async () => {
  const page = await openPage(`http://127.0.0.1:${proxy.port}/`);
  await page.evaluate(() => window.t.subscribe('items'));
  await page.evaluate(() => window.t.subscribe('walitems'));
  await page.evaluate(() => window.t.subscribe('ticks'));
  sql(`SELECT pg_notify('client_tick', '{"n": 1}')`);
  await waitFor(() => page.evaluate(() => (window.t.events.ticks || []).length === 1));
  const done = Promise.all([produce('drop', 150, 20), produce('wdrop', 150, 20, { table: 'wal_items' })]);
  await sleep(700);
  proxy.cut();
  await sleep(1200);
  proxy.cut();
  // Again right after the next connection opened: while the catch-up stream may still run.
  const opened = (await states(page)).filter((s) => s === 'open').length;
  await waitFor(async () => (await states(page)).filter((s) => s === 'open').length > opened, { timeout: 10000 });
  await sleep(50);
  proxy.cut();
  await done;
  await expectExactlyOnce(page, 'drop');
  await expectExactlyOnce(page, 'wdrop', { topic: 'walitems', table: 'wal_items' });
  const walIds = await page.evaluate(() => window.t.events.walitems.map((e) => e.id));
  assert.ok(walIds.every((id) => typeof id === 'string' && id.includes('/')), 'WAL positions as ids');
  console.log('drops:', JSON.stringify(await stats(page)));
  assert.ok((await stats(page)).catchUps >= 3, 'each cut was caught up');
  const resyncs = await page.evaluate(() => window.t.resyncs);
  assert.ok(resyncs.some((r) => r.topic === 'ticks'), `ticks gets onResync after the gap: ${JSON.stringify(resyncs)}`);
  assert.ok(!resyncs.some((r) => r.topic === 'items' || r.topic === 'walitems'),
    `items and walitems are resumed, not resynced: ${JSON.stringify(resyncs)}`);
  // The non-durable subscription is live again.
  await page.locator('#state[data-state="open"]').waitFor();
  sql(`SELECT pg_notify('client_tick', '{"n": 2}')`);
  await waitFor(() => page.evaluate(() => window.t.events.ticks.some((e) => e.data.n === 2)));
  await page.context().close();
});

test('resuming from an id the application kept: subscribe with after', async () => {
  const page = await openPage(`http://127.0.0.1:${port}/`);
  await page.evaluate(() => window.t.subscribe('items'));
  sql("INSERT INTO client_test.items (v) SELECT 'after-' || i FROM generate_series(1, 5) i");
  await waitFor(async () => (await delivered(page, 'after')).length === 5, { timeout: 10000 });
  // The application keeps the event id of after-2, goes away, and comes back with it.
  const kept = await page.evaluate(() => {
    const e = window.t.events.items.find((x) => x.data.v === 'after-2');
    window.t.hub.subscription('items').unsubscribe();
    window.t.events.items = [];
    return e.id;
  });
  sql("INSERT INTO client_test.items (v) VALUES ('after-6')");
  await page.evaluate((after) => window.t.hub.subscribe('items', {
    onEvent: (ev) => window.t.events.items.push({ id: ev.id, event: ev.event, data: ev.data }),
  }, { after }).ready(), kept);
  await waitFor(async () => (await delivered(page, 'after')).length >= 4, { timeout: 10000 });
  sql("INSERT INTO client_test.items (v) VALUES ('after-7')");
  await waitFor(async () => (await delivered(page, 'after')).length >= 5, { timeout: 10000 });
  await sleep(500);
  assert.deepEqual(await delivered(page, 'after'), committed('after').slice(2));
  await page.context().close();
});

test('call, publish, login and a token callback called for every connection', async () => {
  const page = await openPage(`http://127.0.0.1:${proxy.port}/`, {
    tokens: [jwt({ sub: 'first' }), jwt({ sub: 'second' })],
  });
  const req = (fn, ...args) => page.evaluate(([f, a]) => window.t.request((hub) => hub[f](...a)), [fn, args]);

  assert.deepEqual(await req('call', 'whoami'), { ok: true, value: [{ sub: 'first' }] });
  proxy.cut();
  await waitFor(async () => (await states(page)).includes('reconnecting'));
  await page.locator('#state[data-state="open"]').waitFor();
  assert.deepEqual(await req('call', 'whoami'), { ok: true, value: [{ sub: 'second' }] });
  assert.ok(await page.evaluate(() => window.t.tokenCalls) >= 2);

  const unknown = await req('call', 'nope');
  assert.equal(unknown.ok, false);
  assert.equal(unknown.code, 'unknown_command');

  await page.evaluate(() => window.t.subscribe('ticks'));
  assert.equal((await req('publish', 'ticks', { hello: 'world' })).ok, true);
  await waitFor(() => page.evaluate(() =>
    window.t.events.ticks.some((e) => e.event === 'publish' && e.data.hello === 'world')));

  // login: on a new connection (a logged-in one cannot log in again), then used for the next.
  await page.evaluate(() => window.t.hub.setToken(null));
  await page.locator('#state[data-state="open"]').waitFor();
  const bad = await req('login', 'ann', 'wrong');
  assert.equal(bad.code, 'login_failed');
  const good = await req('login', 'ann', 'secret-ann');
  assert.equal(good.ok, true, JSON.stringify(good));
  assert.equal(String(good.value.claims.sub), annId);
  assert.deepEqual(await req('call', 'whoami'), { ok: true, value: [{ sub: annId }] });
  proxy.cut();
  await waitFor(async () => (await req('call', 'whoami')).ok, { timeout: 10000 });
  assert.deepEqual(await req('call', 'whoami'), { ok: true, value: [{ sub: annId }] }, 'the login token is used again');
  await page.context().close();
});

test('a topic that needs a token: the catch-up stream carries it too', async () => {
  const page = await openPage(`http://127.0.0.1:${proxy.port}/`, { tokens: [jwt({ sub: 'owner1' })] });
  await page.evaluate(() => window.t.subscribe('mine:owner1'));
  const done = produce('mine', 100, 20, { owner: 'owner1' });
  await sleep(600);
  proxy.cut();
  await sleep(900);
  proxy.cut();
  await done;
  await expectExactlyOnce(page, 'mine', { topic: 'mine:owner1' });
  assert.deepEqual(await page.evaluate(() => window.t.resyncs), []);
  assert.ok((await stats(page)).merged >= 1);
  await page.context().close();
});

test('a page on another origin (no CORS for SSE): resync instead of a catch-up, no reconnect loop', async () => {
  const page = await openPage(`http://127.0.0.1:${port}/`, { url: `http://localhost:${proxy.port}` });
  await page.evaluate(() => window.t.subscribe('items'));
  sql("INSERT INTO client_test.items (v) VALUES ('cross-1')");
  await waitFor(async () => (await delivered(page, 'cross')).length === 1, { timeout: 10000 });
  proxy.cut();
  await waitFor(() => page.evaluate(() => window.t.resyncs.some((r) => r.topic === 'items' && r.reason === 'resume_failed')), { timeout: 15000 });
  sql("INSERT INTO client_test.items (v) VALUES ('cross-2')");
  await waitFor(async () => (await delivered(page, 'cross')).length === 2, { timeout: 10000 });
  await sleep(1500);
  assert.equal((await stats(page)).connections, 2, 'one reconnect, no loop');
  assert.deepEqual(await delivered(page, 'cross'), committed('cross'));
  await page.context().close();
});

test('SSE only (transport: sse) in the browser: dropped streams resumed, each durable event once', async () => {
  const page = await openPage(`http://127.0.0.1:${proxy.port}/`, { transport: 'sse' });
  await page.evaluate(() => window.t.subscribe('items'));
  const done = produce('sse', 100, 20);
  await sleep(600);
  proxy.cut();
  await sleep(800);
  proxy.cut();
  await done;
  await expectExactlyOnce(page, 'sse');
  const r = await page.evaluate(() => window.t.request((hub) => hub.call('whoami')));
  assert.equal(r.code, 'unsupported');
  await page.context().close();
});

test('WebSockets blocked on the way: the client falls back to SSE', async () => {
  const blocking = await startProxy(port, { blockWebSockets: true });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${blocking.port}/`);
    await page.evaluate(() => window.t.connect({}));
    await page.evaluate(() => { window.t.subscribe('items'); return true; });
    await page.locator('#state[data-state="open"]').waitFor({ timeout: 20000 });
    sql("INSERT INTO client_test.items (v) VALUES ('fallback-1')");
    await waitFor(async () => (await delivered(page, 'fallback')).length === 1, { timeout: 10000 });
    assert.deepEqual(await delivered(page, 'fallback'), committed('fallback'));
    assert.equal(await page.evaluate(() => window.t.hub.transport), 'sse');
    await page.close();
  } finally {
    blocking.close();
  }
});

test('in Node (fetch-based SSE, transport: sse): dropped streams resumed, each durable event once', async () => {
  const { connect } = await import(path.join(root, 'clients/js/pgfanout.js'));
  const hub = connect({ url: `http://127.0.0.1:${proxy.port}`, transport: 'sse', backoff: { initial: 100, max: 1000 } });
  const got = [];
  const sub = hub.subscribe('items', (ev) => { if (String(ev.data.v).startsWith('node-')) got.push(ev.data.id); });
  try {
    await sub.ready();
    const done = produce('node', 100, 20);
    await sleep(600);
    proxy.cut();
    await sleep(800);
    proxy.cut();
    await done;
    const want = committed('node');
    await waitFor(() => got.length >= want.length, { timeout: 30000 });
    await sleep(1000);
    assert.deepEqual(got, want);
  } finally {
    hub.close();
  }
});

test('in Node with a WebSocket implementation (ws, as bundled by playwright-core): calls, cut connections, each durable event once', async () => {
  const { ws: WebSocket } = createRequire(import.meta.url)('playwright-core/lib/utilsBundle');
  const { connect } = await import(path.join(root, 'clients/js/pgfanout.js'));
  const hub = connect({ url: `http://127.0.0.1:${proxy.port}`, WebSocket, token: () => jwt({ sub: 'node' }), backoff: { initial: 100, max: 1000 } });
  const got = [];
  const sub = hub.subscribe('items', (ev) => { if (String(ev.data.v).startsWith('nodews-')) got.push(ev.data.id); });
  try {
    await sub.ready();
    assert.deepEqual(await hub.call('whoami'), [{ sub: 'node' }]);
    const done = produce('nodews', 100, 20);
    await sleep(600);
    proxy.cut();
    await sleep(800);
    proxy.cut();
    await done;
    const want = committed('nodews');
    await waitFor(() => got.length >= want.length, { timeout: 30000 });
    await sleep(1000);
    assert.deepEqual(got, want);
    assert.ok(hub.stats.catchUps >= 2, JSON.stringify(hub.stats));
  } finally {
    hub.close();
  }
});
