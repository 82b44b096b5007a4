// The chat page (examples/chat/web) against the daemon running rules/chat.yaml.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  launch, login, openChat, redis, register, send, shot, sql, uname, waitFor,
} from './support.mjs';

let browser;
let ann;
let bob;
const annName = uname('ann');
const bobName = uname('bob');
const cydName = uname('cyd');
const userId = (name) => sql(`SELECT id FROM chat.users WHERE username = '${name}'`);

before(async () => {
  browser = await launch();
  ann = await openChat(browser);
  bob = await openChat(browser);
});

after(async () => {
  await browser?.close();
});

test('two users register, befriend each other and chat live', async () => {
  await register(ann, annName, 'secret-ann');
  await register(bob, bobName, 'secret-bob');
  assert.equal(await ann.locator('#who').textContent(), annName);

  // bob becomes friends-only and lists ann: ann may still write to him.
  await bob.locator('#friends').fill(annName);
  await bob.locator('#friends-form button').click();
  await waitFor(async () => (await bob.locator('#friends').inputValue()) === annName);
  await bob.locator('#friends-only').check();
  await waitFor(() => sql(`SELECT friends_only FROM chat.users WHERE username = '${bobName}'`) === 't');

  await ann.locator('#refresh-contacts').click();
  await ann.locator(`.contact[data-username="${bobName}"]`).waitFor();
  await ann.locator(`.contact[data-username="${bobName}"]`).click();
  assert.equal(await ann.locator('#to').inputValue(), bobName);

  const t0 = Date.now();
  await ann.locator('#body').fill('hello bob');
  await ann.locator('#send-form button[type=submit]').click();
  await bob.locator('.message.in', { hasText: 'hello bob' }).waitFor({ timeout: 1000 });
  const latency = Date.now() - t0;
  assert.ok(latency < 1000, `bob saw the message after ${latency} ms`);
  await ann.locator('.message.out', { hasText: 'hello bob' }).waitFor();

  await send(bob, annName, 'hi ann');
  await ann.locator('.message.in', { hasText: 'hi ann' }).waitFor({ timeout: 1000 });
  assert.match(await ann.locator('.message.in').last().textContent(), new RegExp(`from ${bobName}`));

  // Shown on a visible page: acknowledged, so nothing is unread.
  await waitFor(() => sql(`SELECT chat.unread_count(${userId(bobName)})`) === '0');
  await waitFor(async () => (await bob.locator('#unread').textContent()) === '0');
  await shot(ann, 'chat-ann');
  await shot(bob, 'chat-bob');
});

test('a friends-only user refuses strangers, and the page says so', async () => {
  const cyd = await openChat(browser);
  await register(cyd, cydName, 'secret-cyd');
  await cyd.locator('#friends-only').check();
  await waitFor(() => sql(`SELECT friends_only FROM chat.users WHERE username = '${cydName}'`) === 't');

  await send(ann, cydName, 'let me in');
  const error = ann.locator('#error');
  await error.waitFor({ state: 'visible' });
  assert.equal(await error.textContent(), `refused: ${cydName} accepts messages only from friends`);
  await shot(ann, 'chat-refused');
  assert.equal(await cyd.locator('.message').count(), 0);
  // Contacts list only who accepts messages: cyd is not among ann's.
  await ann.locator('#refresh-contacts').click();
  await ann.locator(`.contact[data-username="${bobName}"]`).waitFor();
  assert.equal(await ann.locator(`.contact[data-username="${cydName}"]`).count(), 0);
  await cyd.context().close();
});

test('a message sent while the receiver is logged out arrives on login and is marked read', async () => {
  await bob.locator('#logout').click();
  await bob.locator('#login-form').waitFor({ state: 'visible' });
  await bob.locator('#conn[data-state="open"]').waitFor();

  await send(ann, bobName, 'while you were away');
  await ann.locator('.message.out', { hasText: 'while you were away' }).waitFor();
  const id = sql(`SELECT max(id) FROM chat.messages WHERE to_user = ${userId(bobName)}`);
  assert.equal(sql(`SELECT read_at IS NULL FROM chat.messages WHERE id = ${id}`), 't');

  await login(bob, bobName, 'secret-bob');
  await bob.locator('.message.in', { hasText: 'while you were away' }).waitFor();
  await waitFor(() => sql(`SELECT read_at IS NOT NULL FROM chat.messages WHERE id = ${id}`) === 't');
  await waitFor(async () => (await bob.locator('#unread').textContent()) === '0');
  await shot(bob, 'chat-backlog');
});

test('a new message evicts the receiver\'s cached inbox in Redis', async () => {
  const bobId = userId(bobName);
  redis('SET', `inbox:${bobId}`, '["stale"]');
  redis('SET', `inbox:${userId(annName)}`, '["kept"]');
  assert.equal(redis('EXISTS', `inbox:${bobId}`), '1');
  await send(ann, bobName, 'evict my inbox');
  await bob.locator('.message.in', { hasText: 'evict my inbox' }).waitFor();
  await waitFor(() => redis('EXISTS', `inbox:${bobId}`) === '0');
  assert.equal(redis('EXISTS', `inbox:${userId(annName)}`), '1', 'the sender\'s inbox stays cached');
});

test('a wrong password is refused', async () => {
  const page = await openChat(browser);
  await login(page, annName, 'not-the-password');
  const error = page.locator('#error');
  await error.waitFor({ state: 'visible' });
  assert.equal(await error.textContent(), 'Wrong username or password.');
  assert.equal(await page.locator('#chat-view').isVisible(), false);
  await shot(page, 'chat-wrong-password');
  await page.context().close();
});
