// A flight-recorder trigger set from a heatmap panel (docs/recorder.md, "Triggers";
// ui/js/triggers.js), in headless Chromium against a real `sonde serve` as root: an
// instrumentation of a named process's system call latency by execname. With no session
// running, the panel's "Trigger…" form starts one (then stopped); with a syscalls session
// started through the API, the form first shows the server's own message for a bad condition,
// then adds `p99 > 10ms for 1s` on that process's key; 30 ms sleeps of the process (perl's
// select) fire it, and the panel lists the fired entry (taken, the key, a value of at least
// 30 ms) with its snapshot's archive, a ustar archive holding kernel/metadata, which a click
// downloads; with a cell's details open the form offers the cell's band, which the server
// takes; the remove buttons remove the triggers. Screenshots go to SONDE_UI_OUT, as
// triggers-*.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { api, uiSession, waitFor, withTimeout } from './support.mjs';

const NAME = 'sntrig-slow';

// Runs a copy of perl called NAME making n 30 ms sleeps (select), nothing else between them:
// after its start-up second, every second of its system calls has a p99 of 30 ms. Resolves
// when it exited.
function slowCalls(dir, n) {
  const bin = path.join(dir, NAME);
  copyFileSync('/usr/bin/perl', bin);
  const child = spawn(bin, ['-e', `select(undef, undef, undef, 0.03) for 1..${n}`], { stdio: 'ignore' });
  return withTimeout(new Promise((resolve, reject) => {
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${NAME} exited ${code}`))));
    child.on('error', reject);
  }), 15_000, `${NAME}'s ${n} sleeps`).finally(() => child.kill('SIGKILL'));
}

// The names of a ustar archive's members.
function tarNames(buf) {
  const names = [];
  for (let off = 0; off + 512 <= buf.length && names.length < 10_000;) {
    const hd = buf.subarray(off, off + 512);
    if (hd.every((b) => b === 0)) break;
    assert.equal(hd.subarray(257, 262).toString('latin1'), 'ustar', `a ustar header at ${off}`);
    const cut = (a, b) => hd.subarray(a, b).toString('latin1').replace(/\0.*$/s, '');
    const prefix = cut(345, 500);
    names.push(prefix ? `${prefix}/${cut(0, 100)}` : cut(0, 100));
    const size = parseInt(cut(124, 136).trim() || '0', 8);
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return names;
}

test('a trigger set from a heatmap panel fires and offers its snapshot', { timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'snui-trig-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ui = await uiSession(t, { page: { viewport: { width: 1280, height: 1100 } } });
  const { page } = ui;
  const created = await api(ui, 'POST', '/ca/instrumentations', {
    module: 'syscall', stat: 'syscalls', predicate: { eq: ['execname', NAME] },
    decomposition: ['execname', 'latency'],
  });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const id = created.json.id;

  await ui.goto('/');
  const hm = page.locator(`.panel[data-id="${id}"]`);
  await hm.locator('.hm-plot[data-start]').waitFor({ timeout: 15_000 });

  // no session running: the form offers to start one, a syscalls session
  await hm.locator('button.trigger-open').click();
  const form = hm.locator('form.trigger-form');
  await form.locator('button.trigger-start').click();
  await form.locator(`select[name="trigger-session"] option[value="rec-${id}"]`).waitFor({ state: 'attached' });
  assert.equal(await form.locator('select[name="trigger-session"]').inputValue(), `rec-${id}`);
  const started = (await api(ui, 'GET', `/ca/recorder/sessions/rec-${id}`)).json;
  assert.deepEqual(started.events, ['syscalls']);
  await form.locator('button', { hasText: 'Cancel' }).click();
  assert.equal((await api(ui, 'DELETE', `/ca/recorder/sessions/rec-${id}`)).status, 204);

  const rec = await api(ui, 'POST', '/ca/recorder/sessions',
    { name: 'uitrig', events: ['syscalls'], 'size-per-cpu': '64M' });
  assert.equal(rec.status, 201, JSON.stringify(rec.json));
  // the form again, prefilled from the panel: a latency's p99, the running session offered
  await hm.locator('button.trigger-open').click();
  await form.locator(`select[name="trigger-session"] option[value="rec-${id}"]`).waitFor({ state: 'detached' });
  await form.locator('select[name="trigger-session"] option[value="uitrig"]').waitFor({ state: 'attached' });
  assert.equal(await form.locator('input[name="trigger-when"]').inputValue(), 'p99 > 10ms for 3s');
  assert.equal(await form.locator('select[name="trigger-session"]').inputValue(), 'uitrig');

  // a bad condition: the server's message, inline
  const bad = { name: 'slow', session: 'uitrig', instrumentation: Number(id), when: 'p99 > banana', key: NAME,
    'min-interval': 60 };
  const refused = await api(ui, 'POST', '/ca/recorder/triggers', bad);
  assert.equal(refused.status, 409, JSON.stringify(refused.json));
  const said = refused.json.error.message;
  assert.ok(said, JSON.stringify(refused.json));
  await form.locator('input[name="trigger-name"]').fill('slow');
  await form.locator('input[name="trigger-when"]').fill(bad.when);
  await form.locator('input[name="trigger-key"]').fill(NAME);
  await form.locator('button[type="submit"]').click();
  const err = form.locator('.trigger-error');
  await err.waitFor({ state: 'visible' });
  assert.equal(await err.textContent(), `Not added: ${said}`);
  await ui.screenshot('triggers-refused');

  // the good one
  await form.locator('input[name="trigger-when"]').fill('p99 > 10ms for 1s');
  await form.locator('button[type="submit"]').click();
  const row = hm.locator('.trigger-table tr[data-trigger="slow"]');
  await row.waitFor({ timeout: 10_000 });
  assert.ok(await form.isHidden(), 'the form closes once the trigger is added');
  const listed = (await api(ui, 'GET', '/ca/recorder/triggers')).json;
  assert.equal(listed.length, 1, JSON.stringify(listed));
  assert.deepEqual([listed[0].name, listed[0].session, listed[0].instrumentation, listed[0].when, listed[0].key,
    listed[0]['min-interval']], ['slow', 'uitrig', Number(id), 'p99 > 10ms for 1s', NAME, 60]);
  assert.match(await row.textContent(), /p99 > 10ms for 1s/);
  assert.equal(await row.locator('.trigger-fires').textContent(), '0');

  // an outlier: 30 ms sleeps of the process for 1.2 s
  await slowCalls(dir, 40);
  const fired = hm.locator('.fired-table tbody tr[data-state="taken"]');
  try {
    await fired.first().waitFor({ timeout: 20_000 });
  } catch (e) {
    await ui.screenshot('triggers-failed');
    throw new Error(`nothing taken: ${await hm.locator('.hm-triggers').textContent()} ` +
      JSON.stringify((await api(ui, 'GET', '/ca/recorder/triggers')).json) +
      JSON.stringify((await api(ui, 'GET', `/ca/instrumentations/${id}/value/raw?duration=30`)).json));
  }
  await waitFor(async () => (await row.locator('.trigger-fires').textContent()) === '1',
    { what: 'fires 1 in the panel' });
  const entries = (await api(ui, 'GET', '/ca/recorder/triggers/fired')).json;
  assert.equal(entries.length, 1, JSON.stringify(entries));
  const f = entries[0];
  assert.deepEqual([f.trigger, f.session, f.key, f.state], ['slow', 'uitrig', NAME, 'taken']);
  assert.ok(f.value >= 30e6, JSON.stringify(f));
  assert.equal(await fired.count(), 1);
  const cells = await fired.first().locator('td').allTextContents();
  assert.equal(cells[1], 'slow');
  assert.match(cells[2], /^\d+(\.\d+)? ms$/, cells.join(' | '));
  assert.ok(parseFloat(cells[2]) >= 30, cells.join(' | '));
  assert.equal(cells[3], NAME);
  assert.equal(cells[4], 'taken');
  const link = fired.first().locator('a.fired-archive');
  assert.equal(await link.textContent(), `${f.snapshot}.tar`);
  await ui.screenshot('triggers-fired');

  // the link's archive: a ustar of the snapshot, its CTF metadata in kernel/
  const href = await link.getAttribute('href');
  const res = await withTimeout(fetch(new URL(href, ui.serve.url)), 15_000, 'the archive');
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/x-tar');
  const names = tarNames(Buffer.from(await res.arrayBuffer()));
  assert.ok(names.some((n) => /(^|\/)kernel\/metadata$/.test(n)), names.join(' '));
  // and the click downloads it, as that file
  const dl = page.waitForEvent('download', { timeout: 15_000 });
  await link.click();
  assert.equal((await dl).suggestedFilename(), `${f.snapshot}.tar`);

  // a cell's details open (the keyboard's cursor on the newest column, Enter): the form
  // offers that cell's band, which the server takes
  await hm.locator('canvas.hm-overlay').focus();
  await page.keyboard.press('End');
  await page.keyboard.press('Enter');
  const head = hm.locator('.hm-details .details-head');
  await head.waitFor({ timeout: 10_000 });
  await hm.locator('button.trigger-open').click();
  const when = await form.locator('input[name="trigger-when"]').inputValue();
  assert.match(when, /^count in \[[0-9.]+(ns|us|ms|s), [0-9.]+(ns|us|ms|s)\) > 0 for 1s$/);
  assert.equal(await form.locator('input[name="trigger-name"]').inputValue(), `i${id}-band`);
  await form.locator('button[type="submit"]').click();
  const band = hm.locator(`.trigger-table tr[data-trigger="i${id}-band"]`);
  await band.waitFor({ timeout: 10_000 });
  assert.equal((await api(ui, 'GET', `/ca/recorder/triggers/i${id}-band`)).json.when, when);
  await ui.screenshot('triggers-band');
  await band.locator('button.trigger-remove').click();
  await band.waitFor({ state: 'detached', timeout: 10_000 });

  // removed from the panel
  await row.locator('button.trigger-remove').click();
  await hm.locator('.trigger-table').waitFor({ state: 'detached', timeout: 10_000 });
  assert.deepEqual((await api(ui, 'GET', '/ca/recorder/triggers')).json, []);
  assert.equal((await api(ui, 'DELETE', '/ca/recorder/sessions/uitrig')).status, 204);
  // the refused POST is the only failed request the page logged
  assert.deepEqual(ui.errors.filter((e) => !/status of 409/.test(e)), [], 'errors in the page');
});
