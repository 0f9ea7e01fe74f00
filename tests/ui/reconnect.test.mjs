// The UI rides out a server restart: with a live panel open, the server is stopped (the page
// says it cannot reach it and retries) and started again on the same address and data
// directory (the instrumentation is restored): the banner goes and the panel updates again,
// without a reload.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uiSession, waitFor } from './support.mjs';

test('the page reconnects by itself after the server restarts', { timeout: 180_000 }, async (t) => {
  const ui = await uiSession(t);
  const { page } = ui;
  const res = await fetch(new URL('/ca/instrumentations', ui.serve.url), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ module: 'syscall', stat: 'syscalls', decomposition: ['execname', 'latency'] }),
  });
  assert.equal(res.status, 201);
  const { id } = await res.json();
  const updated = () => page.evaluate((i) =>
    Number(document.querySelector(`.panel[data-id="${i}"]`)?.dataset.updated || 0), id);

  await ui.goto('/');
  await waitFor(async () => (await updated()) > 0, { ms: 15_000, what: 'the panel\'s first image' });
  await ui.serve.stop();
  const banner = page.locator('#banner');
  await banner.waitFor({ state: 'visible', timeout: 10_000 });
  assert.match(await banner.innerText(), /cannot be reached/);
  assert.equal(await page.locator('#conn').innerText(), 'reconnecting');
  await ui.screenshot('20-server-away.png', { fullPage: false });
  const before = await updated();

  await ui.serve.restart();
  await banner.waitFor({ state: 'hidden', timeout: 15_000 });
  assert.equal(await page.locator('#conn').innerText(), 'connected');
  await waitFor(async () => (await updated()) > before + 1, { ms: 15_000, what: 'updates after the restart' });
  await ui.screenshot('21-server-back.png', { fullPage: false });
  // while the server was away, the browser logged the refused connections; nothing else
  const other = ui.errors.filter((e) => !/ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|ERR_CONNECTION_RESET/.test(e));
  assert.deepEqual(other, [], 'errors in the page besides the refused connections');
});

test('a page that polls nothing still notices the server going and coming back', { timeout: 120_000 }, async (t) => {
  const ui = await uiSession(t);
  const { page } = ui;
  await ui.goto('/#/catalog');
  await page.locator('.metric-card').first().waitFor();
  await ui.serve.stop();
  // the catalog asks nothing of the server; the page's heartbeat (every 2.5 s after 5 s of
  // silence) finds it gone
  await page.locator('#banner').waitFor({ state: 'visible', timeout: 15_000 });
  assert.equal(await page.locator('#conn').innerText(), 'reconnecting');
  await ui.serve.restart();
  await page.locator('#banner').waitFor({ state: 'hidden', timeout: 15_000 });
  assert.equal(await page.locator('#conn').innerText(), 'connected');
  await page.locator('.metric-card').first().waitFor(); // the view is still (or again) there
  const other = ui.errors.filter((e) => !/ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|ERR_CONNECTION_RESET/.test(e));
  assert.deepEqual(other, [], 'errors in the page besides the refused connections');
});
