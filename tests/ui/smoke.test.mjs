// Smoke test of the web UI: `sonde serve` serves the page at / under its
// Content-Security-Policy, and Chromium loads it without a single console or page error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uiSession } from './support.mjs';

test('the page at / loads cleanly', { timeout: 120_000 }, async (t) => {
  const ui = await uiSession(t);
  const resp = await ui.goto('/', { waitUntil: 'load' });
  assert.ok(resp, 'a response for /');
  assert.equal(resp.status(), 200);
  const headers = await resp.allHeaders();
  assert.ok(headers['content-security-policy'], 'a Content-Security-Policy header');
  assert.match(headers['content-type'] ?? '', /^text\/html/);
  await ui.screenshot('smoke.png');
  ui.assertNoErrors();
  const title = await ui.page.title();
  assert.match(title, /Sonde/, `the document's title (${JSON.stringify(title)}) names Sonde`);
});
