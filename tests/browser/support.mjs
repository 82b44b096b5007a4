// Shared helpers of the browser tests: the browser, fresh contexts, psql and redis-cli.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const artifacts = path.join(here, 'artifacts');
mkdirSync(artifacts, { recursive: true });

export const CHAT_URL = process.env.CHAT_URL;
export const LOCATION_URL = process.env.LOCATION_URL;
if (!CHAT_URL || !LOCATION_URL) throw new Error('CHAT_URL / LOCATION_URL are not set: run tests/browser/run.sh');

// A fresh browser per test file: launch() gives it a new, empty profile directory (a temporary
// one that Playwright removes on close), and every context is isolated like a private window.
export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

export const sql = (query) =>
  execFileSync('psql', [process.env.PGFANOUT_DSN, '-v', 'ON_ERROR_STOP=1', '-qAtc', query], { encoding: 'utf8' }).trim();

export const redis = (...args) =>
  execFileSync('redis-cli', ['-p', process.env.PGFANOUT_TEST_REDIS_PORT, ...args], { encoding: 'utf8' }).trim();

// A unique, valid username per run, so that the tests can run against a database used before.
const run = Date.now().toString(36).slice(-5);
export const uname = (base) => `${base}_${run}`;

export async function waitFor(fn, { timeout = 5000, interval = 50 } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, interval));
  }
}

export async function openChat(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(CHAT_URL);
  await page.locator('#conn[data-state="open"]').waitFor();
  return page;
}

export async function register(page, username, password) {
  const f = page.locator('#register-form');
  await f.locator('[name=username]').fill(username);
  await f.locator('[name=password]').fill(password);
  await f.locator('[name=email]').fill(`${username}@example.org`);
  await f.locator('button[type=submit]').click();
  await page.locator('#chat-view[data-ready="1"]').waitFor({ state: 'visible' });
}

export async function login(page, username, password) {
  const f = page.locator('#login-form');
  await f.locator('[name=username]').fill(username);
  await f.locator('[name=password]').fill(password);
  await f.locator('button[type=submit]').click();
}

export async function send(page, to, body) {
  await page.locator('#to').fill(to);
  await page.locator('#body').fill(body);
  await page.locator('#send-form button[type=submit]').click();
}

export const shot = (page, name) => page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
