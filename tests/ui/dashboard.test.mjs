// Dashboards in headless Chromium against a real `sonde serve` (with its local agent, so the
// panels have data): a dashboard is created from the list, panels are added, moved (with the
// buttons, the keyboard and a drag) and resized, and every change is saved on the server;
// a panel's keys, y scale and range and the page's time (paused) go into the URL; a reload
// restores the view, and the URL copied into a fresh page (another browser context, nothing
// shared) restores it too, as does a link naming a window.
// Screenshots go to SONDE_UI_OUT (tests/out/ui of the build).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, openPage, screenshot, sleep, uiSession, waitFor } from './support.mjs';

// The dashboard as the server has it, once it matches want (a function of the document).
async function saved(ui, name, want, what) {
  let last;
  await waitFor(async () => {
    last = (await api(ui, 'GET', `/ca/dashboards/${name}`)).json;
    return last && want(last);
  }, { ms: 8_000, what: `saved: ${what}` }).catch((e) => {
    e.message += `\n${JSON.stringify(last)}`;
    throw e;
  });
  return last;
}

const order = (page) => page.locator('.dash-cell').evaluateAll((cs) => cs.map((c) => c.dataset.id));
const hashParams = (url) => new URLSearchParams(new URL(url).hash.split('?')[1] || '');

test('dashboards: create, arrange, share', { timeout: 240_000 }, async (t) => {
  const ui = await uiSession(t, { page: { viewport: { width: 1400, height: 1000 } } });
  const { page } = ui;
  const hm = await api(ui, 'POST', '/ca/instrumentations',
    { module: 'syscall', stat: 'syscalls', decomposition: ['execname', 'latency'] });
  const ch = await api(ui, 'POST', '/ca/instrumentations',
    { module: 'syscall', stat: 'syscalls', decomposition: ['syscall'] });
  assert.equal(hm.status, 201);
  assert.equal(ch.status, 201);
  const H = hm.json.id, C = ch.json.id;
  const cell = (id) => page.locator(`.dash-cell[data-id="${id}"]`);

  await t.test('a dashboard is created from the list', async () => {
    await ui.goto('/#/dashboards');
    await page.locator('.dash-new').waitFor();
    assert.match(await page.locator('.dash-list').innerText(), /No dashboards yet/);
    // a name that cannot be one is refused where it is typed
    await page.fill('input[name=dash-name]', '.hidden');
    await page.click('.dash-new button[type=submit]');
    assert.match(await page.locator('.dash-new .error').innerText(), /A name is 1 to 64/);
    await page.fill('input[name=dash-name]', 'ops');
    await page.fill('input[name=dash-title]', 'Ops board');
    await page.click('.dash-new button[type=submit]');
    await page.waitForURL(/#\/d\/ops/);
    await page.locator('.dashboard h1', { hasText: 'Ops board' }).waitFor();
    assert.equal((await api(ui, 'GET', '/ca/dashboards/ops')).status, 200);
    assert.match(await page.locator('.dash-grid').innerText(), /No panels yet/);
    // renamed in place
    await page.click('.dash-actions button[name=rename]');
    await page.fill('input[name=title]', 'Ops');
    await page.press('input[name=title]', 'Escape');
    assert.equal(await page.locator('.dashboard h1').innerText(), 'Ops board');
    await page.click('.dash-actions button[name=rename]');
    await page.fill('input[name=title]', 'Operations');
    await page.press('input[name=title]', 'Enter');
    assert.equal(await page.locator('.dashboard h1').innerText(), 'Operations');
    await saved(ui, 'ops', (d) => d.title === 'Operations', 'the new title');
  });

  await t.test('panels are added, and saved', async () => {
    await page.selectOption('select[name=add-panel]', `id:${H}`);
    await page.click('.dash-add button');
    await page.selectOption('select[name=add-panel]', `id:${C}`);
    await page.click('.dash-add button');
    assert.deepEqual(await order(page), [H, C]);
    await cell(H).locator('.hm-plot[data-start]').waitFor({ timeout: 15_000 });
    await cell(C).locator('canvas.chart[data-end]').waitFor({ timeout: 15_000 });
    const doc = await saved(ui, 'ops', (d) => d.panels.length === 2, 'two panels');
    assert.deepEqual(doc.panels.map((p) => p.instrumentation), [H, C]);
    assert.equal(doc.panels[0].definition.module, 'syscall');
    assert.deepEqual(doc.panels[0].definition.decomposition, ['execname', 'latency']);
    // what is on the dashboard is no longer offered
    const offered = await page.locator('select[name=add-panel] option').evaluateAll((os) => os.map((o) => o.value));
    assert.ok(!offered.includes(`id:${H}`) && !offered.includes(`id:${C}`), offered.join(' '));
    await ui.screenshot('dash-01-added.png');
  });

  await t.test('panels move: buttons, keyboard, drag', async () => {
    await cell(H).locator('button[name=later]').click();
    assert.deepEqual(await order(page), [C, H]);
    await saved(ui, 'ops', (d) => d.panels[0].instrumentation === C, 'moved by a button');
    // the handle, from the keyboard
    await cell(H).locator('.drag-handle').focus();
    await page.keyboard.press('ArrowLeft');
    assert.deepEqual(await order(page), [H, C]);
    assert.equal(await page.evaluate(() => document.activeElement.closest('.dash-cell')?.dataset.id), H,
      'the focus stays with the moved panel');
    await saved(ui, 'ops', (d) => d.panels[0].instrumentation === H, 'moved by the keyboard');
    // dragged by the handle onto the other panel
    await cell(C).locator('.drag-handle').dragTo(cell(H).locator('.dash-tools'));
    await waitFor(async () => (await order(page))[0] === C, { what: 'the drag moved the chart first' });
    await saved(ui, 'ops', (d) => d.panels[0].instrumentation === C, 'moved by a drag');
  });

  await t.test('panels resize: width in columns, height in steps', async () => {
    const grid = await page.locator('.dash-grid').boundingBox();
    const w1 = (await cell(H).boundingBox()).width;
    assert.ok(w1 < grid.width / 2, `one column of three: ${w1} of ${grid.width}`);
    await cell(H).locator('.dash-tools button[title="width 3"]').click();
    await cell(H).locator('.dash-tools button[title="height 2"]').click();
    assert.equal(await cell(H).getAttribute('data-w'), '3');
    const w3 = (await cell(H).boundingBox()).width;
    assert.ok(w3 > grid.width * 0.95, `three columns: ${w3} of ${grid.width}`);
    assert.ok((await cell(H).boundingBox()).height >= 500, 'two steps high');
    await cell(C).locator('.dash-tools button[title="height 2"]').click();
    await waitFor(async () => (await cell(C).locator('canvas.chart').boundingBox()).height > 400,
      { what: 'a taller chart' });
    const doc = await saved(ui, 'ops', (d) => d.panels[1].w === 3 && d.panels[1].h === 2 && d.panels[0].h === 2, 'sizes');
    assert.equal(doc.panels[0].w, 1);
    // the heatmap is as wide as its cell
    await sleep(1500);
    const img = await cell(H).locator('canvas.hm-image').boundingBox();
    assert.ok(img.width > grid.width * 0.8, `the image fills the cell: ${img.width}`);
    await ui.screenshot('dash-02-arranged.png');
  });

  let url;
  let state;
  await t.test('keys, scale and the paused time go into the URL', async () => {
    const p = cell(H);
    await p.locator('select[name=yscale]').selectOption('linear');
    await p.locator('input[name=auto]').uncheck();
    await p.locator('input[name=ymax]').fill('20ms');
    await p.locator('input[name=ymax]').press('Enter');
    await p.locator('input[name=ymax]').blur();
    await p.locator('.legend li[data-key] button:not([disabled])').first().waitFor({ timeout: 15_000 });
    const key = await p.locator('.legend li[data-key] button:not([disabled])').first()
      .evaluate((b) => b.closest('li').dataset.key);
    await p.locator(`.legend li[data-key="${key}"] button`).click();
    await p.locator('button[name=exclude]').click();
    await p.locator('select[name=coloring]').selectOption('rank');
    await page.click('button.pause');
    await waitFor(() => hashParams(page.url()).has('at'), { what: 'the paused time in the URL' });
    await waitFor(() => (hashParams(page.url()).get(`v.${H}`) || '').startsWith('linear~0~20000000~exclude~rank~'),
      { what: 'the panel\'s view in the URL' });
    const q = hashParams(page.url());
    assert.equal(q.get('t'), '60');
    assert.equal(q.get(`v.${H}`), `linear~0~20000000~exclude~rank~${key}`);
    assert.ok(!q.has(`v.${C}`), 'a chart has no view state');
    // paused, said for the page and on each panel
    const badge = page.locator('.paused-badge');
    assert.ok(await badge.isVisible());
    assert.match(await badge.innerText(), /^Paused at \d\d:\d\d:\d\d$/);
    await waitFor(async () => /paused/.test(await p.locator('.panel-status').innerText()), { what: 'the panel says paused' });
    await waitFor(async () => /paused/.test(await cell(C).locator('.panel-status').innerText()), { what: 'the chart says paused' });
    const at = Number(q.get('at'));
    await waitFor(async () => Number(await p.locator('.hm-plot').getAttribute('data-start')) === at - 60,
      { what: 'the heatmap shows the minute before the pause' });
    state = { key, at, badge: await badge.innerText() };
    url = page.url();
    // the dashboard keeps the panel's view too
    const doc = await saved(ui, 'ops', (d) => d.panels[1].options.mode === 'exclude', 'the panel\'s options');
    assert.deepEqual(doc.panels[1].options,
      { yscale: 'linear', ymin: 0, ymax: 20_000_000, selected: [key], mode: 'exclude', coloring: 'rank' });
    await ui.screenshot('dash-03-paused.png');
  });

  // The view of url, in page: what the test above set.
  async function restored(pg, what) {
    const p = pg.locator(`.dash-cell[data-id="${H}"]`);
    await p.locator('.hm-plot[data-start]').waitFor({ timeout: 15_000 });
    assert.deepEqual(await pg.locator('.dash-cell').evaluateAll((cs) => cs.map((c) => c.dataset.id)), [C, H], what);
    assert.equal(await p.getAttribute('data-w'), '3', what);
    assert.equal(await p.getAttribute('data-h'), '2', what);
    assert.equal(await p.locator('select[name=yscale]').inputValue(), 'linear', what);
    assert.equal(await p.locator('input[name=ymax]').inputValue(), '20ms', what);
    assert.equal(await p.locator('input[name=auto]').isChecked(), false, what);
    assert.equal(await p.locator('button[name=exclude]').getAttribute('aria-pressed'), 'true', what);
    assert.equal(await p.locator('select[name=coloring]').inputValue(), 'rank', what);
    await waitFor(async () => (await p.locator(`.legend li[data-key="${state.key}"] button`).getAttribute('aria-pressed')) === 'true',
      { what: `${what}: the key selected` });
    assert.equal(await pg.locator('.paused-badge').innerText(), state.badge, what);
    await waitFor(async () => Number(await p.locator('.hm-plot').getAttribute('data-start')) === state.at - 60,
      { what: `${what}: the paused interval` });
    await waitFor(async () => Number(await p.locator('.hm-plot').getAttribute('data-ymax')) === 20_000_000,
      { what: `${what}: drawn to 20 ms` });
  }

  await t.test('a reload restores the view', async () => {
    await page.reload();
    await restored(page, 'after a reload');
    assert.equal(page.url(), url);
  });

  await t.test('the copied URL restores the view in a fresh page', async () => {
    const fresh = await openPage(ui.browser, { viewport: { width: 1400, height: 1000 } });
    try {
      await sharedView(fresh);
    } finally {
      await fresh.context.close();
    }
  });

  async function sharedView(fresh) {
    await fresh.page.goto(url);
    await restored(fresh.page, 'in a fresh page');
    await screenshot(fresh.page, 'dash-04-shared.png');
    // a link naming a window: that interval, its start in the picker on the axes' clock
    const start = state.at - 300;
    const q = hashParams(url);
    q.delete('t');
    q.delete('at');
    q.set('from', String(start));
    q.set('len', '120');
    await fresh.page.goto(`${url.split('#')[0]}#/d/ops?${q}`);
    await fresh.page.reload();
    const p = fresh.page.locator(`.dash-cell[data-id="${H}"]`);
    await waitFor(async () => Number(await p.locator('.hm-plot').getAttribute('data-start')) === start,
      { ms: 15_000, what: 'the window of the link' });
    assert.equal(await fresh.page.locator('button[data-range=custom]').getAttribute('aria-pressed'), 'true');
    const pad = (x) => String(x).padStart(2, '0');
    const local = (sec) => {
      const d = new Date(sec * 1000);
      return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
        `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    };
    assert.equal(await fresh.page.inputValue('input[name=custom-from]'), local(start));
    assert.equal(await fresh.page.inputValue('input[name=custom-to]'), local(start + 120));
    assert.ok(await fresh.page.locator('.paused-badge').isHidden());
    assert.deepEqual(fresh.errors, [], 'errors in the fresh page');
  }

  await t.test('420 px wide: one column, nothing scrolls sideways', async () => {
    await page.setViewportSize({ width: 420, height: 900 });
    await sleep(1500);
    const w = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      cells: [...document.querySelectorAll('.dash-cell')].map((c) => Math.round(c.getBoundingClientRect().right)),
      wide: [...document.querySelectorAll('body *')].filter((e) => e.getClientRects().length &&
        e.getBoundingClientRect().right > 421).slice(0, 6)
        .map((e) => `${e.tagName}.${e.className}: ${Math.round(e.getBoundingClientRect().right)}`),
    }));
    assert.ok(w.scroll <= 420, JSON.stringify(w));
    assert.ok(w.cells.every((r) => r <= 420), JSON.stringify(w));
    const [a, b] = await page.locator('.dash-cell').evaluateAll((cs) => cs.map((c) => c.getBoundingClientRect().top));
    assert.ok(b > a, 'one above the other');
    await ui.screenshot('dash-05-420.png', { fullPage: false });
    await page.setViewportSize({ width: 1400, height: 1000 });
  });

  await t.test('a panel whose instrumentation is gone can be created again', async () => {
    await page.click('button.pause'); // resume
    assert.equal((await api(ui, 'DELETE', `/ca/instrumentations/${C}`)).status, 204);
    const note = cell(C).locator('.dash-gone');
    await note.waitFor({ timeout: 15_000 });
    assert.match(await note.innerText(), new RegExp(`#${C} no longer exists`));
    await cell(C).locator('button[name=recreate]').click();
    await page.locator('.dash-cell').first().locator('canvas.chart[data-end]').waitFor({ timeout: 15_000 });
    const id = await page.locator('.dash-cell').first().getAttribute('data-id');
    assert.notEqual(id, C);
    const got = await api(ui, 'GET', `/ca/instrumentations/${id}`);
    assert.deepEqual(got.json.decomposition, ['syscall']);
    await saved(ui, 'ops', (d) => d.panels[0].instrumentation === id, 'the new id');
    // remove a panel; delete the dashboard
    await cell(id).locator('button[name=remove]').click();
    await saved(ui, 'ops', (d) => d.panels.length === 1, 'one panel left');
    page.once('dialog', (dlg) => dlg.accept());
    await page.click('.dash-actions button.danger');
    await page.waitForURL(/#\/dashboards$/);
    assert.equal((await api(ui, 'GET', '/ca/dashboards/ops')).status, 404);
    assert.equal((await api(ui, 'GET', `/ca/instrumentations/${H}`)).status, 200, 'its instrumentations stay');
  });

  // the deleted instrumentation's requests in flight, and nothing else
  const expected = [new RegExp(`status of 404 .*/ca/instrumentations/${C}/`), /status of 404 .*\/ca\/dashboards\/ops/];
  assert.deepEqual(ui.errors.filter((e) => !expected.some((re) => re.test(e))), [], 'errors in the page');
});
