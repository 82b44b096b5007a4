// The location page (examples/location/web) against the daemon running rules/location.yaml.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { LOCATION_URL, launch, redis, shot, sql, waitFor } from './support.mjs';

let browser;
let page;

before(async () => {
  browser = await launch();
  page = await (await browser.newContext({ viewport: { width: 1200, height: 700 } })).newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(LOCATION_URL);
  await page.locator('#conn[data-state="open"]').waitFor();
});

after(async () => {
  await browser?.close();
});

const marker = (id) => page.locator(`.marker[data-id="${id}"]`);

test('the map shows one marker per person with a location', async () => {
  const n = Number(sql('SELECT count(*) FROM person WHERE loc IS NOT NULL'));
  assert.ok(n > 0);
  await waitFor(async () => (await page.locator('.marker').count()) === n);
  assert.ok((await page.locator('#graticule line').count()) > 0, 'a graticule is drawn');
  await page.waitForFunction(() => document.querySelectorAll('#land path').length > 0);
  assert.ok((await page.locator('#land path').count()) > 0, 'coastlines are drawn from land.geojson');
});

test('an UPDATE of a person\'s row moves that marker', async () => {
  const id = sql('SELECT min(id) FROM person WHERE loc IS NOT NULL');
  await marker(id).waitFor();
  const before = await marker(id).getAttribute('transform');
  await shot(page, 'location-before');
  const [lon, lat] = sql(`SELECT ST_X(loc::geometry) || ' ' || ST_Y(loc::geometry) FROM person WHERE id = ${id}`)
    .split(' ').map(Number);
  const to = [lon + 0.01, lat - 0.005];
  // An application's cached copy of the person, evicted by the move.
  redis('SET', `person:${id}`, '{"stale":true}');
  sql(`UPDATE person SET loc = ST_SetSRID(ST_MakePoint(${to[0]}, ${to[1]}), 4326)::geography WHERE id = ${id}`);
  await waitFor(async () => Math.abs(Number(await marker(id).getAttribute('data-lon')) - to[0]) < 1e-9, { timeout: 2000 });
  assert.ok(Math.abs(Number(await marker(id).getAttribute('data-lat')) - to[1]) < 1e-9);
  assert.notEqual(await marker(id).getAttribute('transform'), before);
  // Both triggers announced it: the seed's (person_updated) and the generated one (person_changed).
  await page.locator('#log li', { hasText: `person_updated  #${id}` }).waitFor();
  await page.locator('#log li', { hasText: `person_changed UPDATE #${id}` }).waitFor();
  await waitFor(() => redis('EXISTS', `person:${id}`) === '0');
  await shot(page, 'location-after');
});
