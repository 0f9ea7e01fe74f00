// The web UI end to end, in headless Chromium against a real `sonde serve` with its local
// agent: a workload with a known name ("snui-sleeper": /bin/sleep copied under that name, run
// in a loop, so its 2 ms nanosleeps are in the kernel's data) is watched through every view:
//   the empty page and its presets; the catalog and its filter; the create form with the
//   predicate builder (and the server's refusal in words); the live heatmap updating; a key
//   highlighted from the legend; hover (time, range, count) and click (per-key counts, equal
//   to the API's); isolate (only the key's hue, the legend's colour being the pixels');
//   percentile lines; scalar and discrete charts (tooltips with swatches, biggest first);
//   pause and resume (said for the whole page); a custom interval (typed on the axes' 24-hour
//   clock); clone and delete; an instrumentation deleted elsewhere; 700 and 420 px wide
//   windows; the dark theme; the server's host name in the header.
// Screenshots of each view go to SONDE_UI_OUT (tests/out/ui of the build).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { api, sleep, startWorkload, uiSession, waitFor } from './support.mjs';

const NAME = 'snui-sleeper';

// A summary of a canvas's pixels, computed in the page (a 1000 × 280 canvas is a million
// numbers: too many to ship to the test each time): a hash, the count of non-white pixels,
// of pixels whose green is not the largest channel, of exact colour `full`, of non-transparent
// pixels, and the greenest pixel left of the newest `edge` columns.
async function scan(page, sel, { full = [53, 242, 24], edge = 60 } = {}) {
  return page.evaluate(([s, f, e]) => {
    const c = document.querySelector(s);
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const out = { hash: 0, coloured: 0, notGreen: 0, full: 0, opaque: 0, best: null };
    let score = 0;
    for (let i = 0, px = 0; i < d.length; i += 4, px++) {
      const r = d[i], g = d[i + 1], b = d[i + 2];
      out.hash = (out.hash * 31 + r * 7 + g * 3 + b) | 0;
      if (d[i + 3] > 0) out.opaque++;
      if (r === 255 && g === 255 && b === 255) continue;
      out.coloured++;
      if (!(g >= r && g >= b)) out.notGreen++;
      if (r === f[0] && g === f[1] && b === f[2]) out.full++;
      const x = px % c.width, y = Math.floor(px / c.width);
      if (x < c.width - e && g - Math.max(r, b) > score) {
        score = g - Math.max(r, b);
        out.best = { x, y };
      }
    }
    return out;
  }, [sel, full, edge]);
}

const updated = (page, id) =>
  page.evaluate((i) => Number(document.querySelector(`.panel[data-id="${i}"]`)?.dataset.updated || 0), id);

test('the web UI, view by view', { timeout: 240_000 }, async (t) => {
  const work = startWorkload(NAME);
  t.after(() => work.stop());
  const ui = await uiSession(t, { page: { viewport: { width: 1280, height: 900 } } });
  const { page } = ui;
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));

  await t.test('an empty server offers a start', async () => {
    await ui.goto('/');
    await page.locator('.empty h2').waitFor();
    assert.match(await page.locator('.empty').innerText(), /Nothing is instrumented yet/);
    assert.ok(await page.locator('.empty button.preset').count() >= 3);
    await ui.screenshot('01-empty.png');
  });

  await t.test('the catalog lists modules, metrics and fields with units', async () => {
    await ui.goto('/#/catalog');
    const card = page.locator('.metric-card[data-metric="syscall.syscalls"]');
    await card.waitFor();
    const lat = await card.locator('tr[data-field="latency"]').innerText();
    assert.match(lat, /latency/);
    assert.match(lat, /numeric/);
    assert.match(lat, /nanoseconds/);
    assert.match(await card.locator('tr[data-field="execname"]').innerText(), /discrete/);
    const all = await page.locator('.metric-card').count();
    assert.match(await page.locator('.catalog-count').innerText(), new RegExp(`^${all} metrics in \\d+ modules$`));
    await page.fill('.catalog-filter', 'retransmits');
    assert.equal(await page.locator('.metric-card:visible').count(), 1);
    assert.ok(await page.locator('.metric-card[data-metric="tcp.retransmits"]').isVisible());
    // the count says what the filter leaves, of how many
    assert.match(await page.locator('.catalog-count').innerText(), new RegExp(`^1 of ${all} metrics \\(in 1 of \\d+ modules\\)$`));
    await ui.screenshot('02a-catalog-filtered.png', { fullPage: false });
    await page.fill('.catalog-filter', '');
    await ui.screenshot('02-catalog.png');
    await card.locator('button', { hasText: 'Instrument' }).click();
    await page.waitForURL(/#\/new\/syscall\.syscalls$/);
    assert.equal(await page.locator('select[name=metric]').inputValue(), 'syscall.syscalls');
  });

  let hmId;
  await t.test('the form creates an instrumentation; the server\'s refusals read as words', async () => {
    await ui.goto('/#/new');
    await page.selectOption('select[name=metric]', 'syscall.syscalls');
    // decomposition pickers offer only the metric's fields of each kind
    const discrete = await page.locator('select[name=discrete] option').allTextContents();
    const numeric = await page.locator('select[name=numeric] option').evaluateAll((os) => os.map((o) => o.value));
    assert.ok(discrete.some((s) => /execname/.test(s)));
    assert.deepEqual(numeric.filter(Boolean).sort(), ['cputime', 'latency', 'subsecond']);
    await page.selectOption('select[name=discrete]', 'execname');
    await page.selectOption('select[name=numeric]', 'latency');
    // a refusal: retention under 10 s
    await page.fill('input[name=retention]', '5');
    await page.click('#new-form button[type=submit]');
    await page.locator('#new-error').waitFor();
    assert.match(await page.locator('#new-error').innerText(), /Not created: .*retention-time/);
    await ui.screenshot('03-new-refused.png');
    await page.fill('input[name=retention]', '600');
    // a predicate from the builder: latency > 1us, typed in units
    await page.click('.pred-add');
    await page.selectOption('.pred-row .pred-field', 'latency');
    assert.deepEqual(await page.locator('.pred-row .pred-op option').evaluateAll((os) => os.map((o) => o.value)),
      ['eq', 'ne', 'lt', 'le', 'gt', 'ge']);
    await page.selectOption('.pred-row .pred-op', 'gt');
    // a value that does not read: the row says why, Create waits and says why too
    await page.fill('.pred-row .pred-value', '2 parsecs');
    await page.locator('.pred-row.bad .pred-error').waitFor();
    assert.equal(await page.locator('.pred-row .pred-error').innerText(), '"2 parsecs" is not a value of latency (e.g. 2ms, 150us)');
    assert.equal(await page.locator('.pred-row .pred-value').getAttribute('aria-invalid'), 'true');
    assert.ok(await page.locator('#new-form button[type=submit]').isDisabled());
    assert.match(await page.locator('#create-why').innerText(), /^Not yet: "2 parsecs" is not a value of latency/);
    assert.match(await page.locator('.create-preview').getAttribute('class'), /stale/);
    await ui.screenshot('04a-new-bad-unit.png');
    await page.fill('.pred-row .pred-value', '1us');
    assert.ok(await page.locator('.pred-row .pred-error').isHidden());
    assert.ok(await page.locator('#new-form button[type=submit]').isEnabled());
    assert.ok(await page.locator('#create-why').isHidden());
    const preview = JSON.parse(await page.locator('.create-preview').innerText());
    assert.deepEqual(preview.predicate, { gt: ['latency', 1000] });
    assert.deepEqual(preview.decomposition, ['execname', 'latency']);
    await ui.screenshot('04-new-form.png');
    await page.click('#new-form button[type=submit]');
    await page.waitForURL(/#\/$/);
    await page.locator('.panel').first().waitFor();
    hmId = await page.locator('.panel').first().getAttribute('data-id');
    const got = await api(ui, 'GET', `/ca/instrumentations/${hmId}`);
    assert.equal(got.status, 200);
    assert.deepEqual(got.json.predicate, { gt: ['latency', 1000] });
    assert.deepEqual(got.json.decomposition, ['execname', 'latency']);
  });

  const hm = () => page.locator(`.panel[data-id="${hmId}"]`);
  await t.test('the heatmap updates every second', async () => {
    await hm().locator('.hm-plot[data-start]').waitFor();
    const seen = new Set();
    const frames = new Set();
    await waitFor(async () => {
      seen.add(await updated(page, hmId));
      frames.add((await scan(page, `.panel[data-id="${hmId}"] canvas.hm-image`)).hash);
      return seen.size >= 4 && frames.size >= 3;
    }, { ms: 15_000, every: 250, what: 'four updates of the heatmap' });
    const legend = await hm().locator('.legend li[data-key]').evaluateAll((ls) => ls.map((l) => l.dataset.key));
    assert.ok(legend.includes(NAME), `the legend lists ${NAME}: ${legend.join(', ')}`);
    // the percentile lines are drawn (p50's colour on the overlay)
    const drawn = (await scan(page, `.panel[data-id="${hmId}"] canvas.hm-overlay`)).opaque;
    assert.ok(drawn > 50, `percentile lines drawn (${drawn} pixels)`);
    // the y axis is in human units
    assert.match(await hm().locator('.axis-y').innerText(), /(µs|ms)/);
    await ui.screenshot('05-heatmap-live.png');
  });

  await t.test('a legend key is highlighted in its hue; hover and click tell the cell', async () => {
    // the legend shows the biggest keys: the search box finds any
    await hm().locator('input.legend-search').fill(NAME.slice(0, 6));
    await hm().locator(`.legend li[data-key="${NAME}"] button`).click();
    await hm().locator('input.legend-search').fill('');
    await waitFor(() => requests.some((u) => u.includes('/heatmap/image') && u.includes(`selected=${NAME}`)),
      { what: 'an image request with the key selected' });
    await sleep(1500);
    assert.equal(await hm().locator(`.legend li[data-key="${NAME}"] button`).getAttribute('aria-pressed'), 'true');
    // the first selected key's hue, 112° (the legend is redrawn each second: read it whole)
    const swatch = () => page.evaluate((k) => {
      const e = [...document.querySelectorAll('.legend li[data-key]')].find((l) => l.dataset.key === k);
      return e ? getComputedStyle(e.querySelector('.swatch')).backgroundColor : null;
    }, NAME);
    await waitFor(async () => (await swatch()) === 'rgb(53, 242, 24)', { what: `${NAME}'s swatch in hue 112°` });
    // the greenest pixel away from the newest columns: the key's cells
    let best = null;
    await waitFor(async () => {
      best = (await scan(page, `.panel[data-id="${hmId}"] canvas.hm-image`)).best;
      return best !== null;
    }, { ms: 8_000, what: `a cell of ${NAME} in the image` });
    const box = await hm().locator('canvas.hm-overlay').boundingBox();
    await page.mouse.move(box.x + best.x + 0.5, box.y + best.y + 0.5);
    const tip = hm().locator('.hm-tip');
    await waitFor(async () => /events?/.test(await tip.innerText()), { what: 'the tooltip\'s count' });
    const text = await tip.innerText();
    assert.match(text, /\d\d:\d\d:\d\d/);
    assert.match(text, /(ns|µs|ms|s) – .*(ns|µs|ms|s)/);
    assert.match(text, /\d+ events?/);
    await ui.screenshot('06-heatmap-hover.png', { fullPage: false });
    // the click's details (the panel also asks details of the darkest cell, for its scale)
    const near = (u) => ['x', 'y'].every((a) => Math.abs(Number(new URL(u).searchParams.get(a)) - best[a]) <= 1);
    const detailsResp = page.waitForResponse((r) => r.url().includes('/heatmap/details') && near(r.url()));
    await page.mouse.click(box.x + best.x + 0.5, box.y + best.y + 0.5);
    const d = await (await detailsResp).json();
    const row = hm().locator(`.hm-details tr[data-key="${NAME}"]`);
    await row.waitFor();
    assert.ok(d.present[NAME] >= 1, `the API's details count ${NAME}: ${JSON.stringify(d.present)}`);
    const cells = await row.locator('td').allInnerTexts();
    assert.equal(Number(cells[1].replace(/\s/g, '')), d.present[NAME]);
    assert.match(await hm().locator('.details-head').innerText(), /latency .*– /);
    assert.ok(d.bucket_ymax > d.bucket_ymin && d.total >= d.present[NAME], JSON.stringify(d));
    await ui.screenshot('07-heatmap-details.png');
  });

  await t.test('isolate draws only the selected key, in the legend\'s colour', async () => {
    const before = requests.length;
    await hm().locator('button[name=isolate]').click();
    assert.equal(await hm().locator('button[name=isolate]').getAttribute('aria-pressed'), 'true');
    await waitFor(() => requests.slice(before).some((u) => u.includes('/heatmap/image') && u.includes('isolate=true')),
      { what: 'an isolated image request' });
    await waitFor(async () => (await hm().locator('.legend .rest-item').count()) === 0, { what: 'the isolated image' });
    await sleep(500);
    const { coloured, notGreen: other, full } = await scan(page, `.panel[data-id="${hmId}"] canvas.hm-image`);
    assert.ok(coloured > 0, 'the isolated key has cells');
    assert.equal(other, 0, 'no pixel of another hue');
    assert.ok(full > 0, 'the most intense cells are the legend\'s colour');
    await ui.screenshot('08-heatmap-isolate.png');
    await hm().locator('button[name=isolate]').click();
    assert.equal(await hm().locator('button[name=isolate]').getAttribute('aria-pressed'), 'false');
  });

  await t.test('focus stays where it is while data flows; keys toggle from the keyboard', async () => {
    const focused = () => page.evaluate(() => {
      const a = document.activeElement;
      return a ? `${a.tagName}:${a.getAttribute('name') || a.closest('li')?.dataset.key || ''}` : '';
    });
    // a legend key, focused by the keyboard, through several redraws of the legend
    const btn = hm().locator(`.legend li[data-key="${NAME}"] button`);
    await btn.focus();
    await sleep(2500);
    assert.equal(await focused(), `BUTTON:${NAME}`);
    assert.equal(await btn.getAttribute('aria-pressed'), 'true');
    await page.keyboard.press('Enter');
    await waitFor(async () => (await btn.getAttribute('aria-pressed')) === 'false', { what: 'Enter unselects the key' });
    await page.keyboard.press('Space');
    await waitFor(async () => (await btn.getAttribute('aria-pressed')) === 'true', { what: 'Space selects it again' });
    // a control of a panel, through the list's refresh (every 5 s)
    await hm().locator('input[name=ymin]').focus();
    await sleep(6000);
    assert.equal(await focused(), 'INPUT:ymin');
  });

  await t.test('the keyboard walks the cells: arrows move, Enter opens the details', async () => {
    await page.mouse.move(0, 0); // the keyboard's tooltip only (a mouse over the image has its own)
    await hm().locator('button[name=decompose_all]').focus();
    await page.keyboard.press('Tab'); // to the heatmap: the cursor starts at the newest column
    assert.equal(await page.evaluate(() => document.activeElement.className), 'hm-overlay');
    const tip = hm().locator('.hm-tip');
    await tip.waitFor();
    const t0 = await tip.locator('.tip-time').innerText();
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('ArrowLeft');
    await waitFor(async () => {
      const t = await tip.locator('.tip-time').innerText();
      const sec = (s) => s.split(':').reduce((a, b) => a * 60 + Number(b), 0);
      return sec(t0) - sec(t) >= 1; // two columns back (the image may move on meanwhile)
    }, { what: 'the tooltip of a column further back' });
    for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowDown');
    await waitFor(async () => /events?|no data/.test(await tip.innerText()), { what: 'the cell\'s count' });
    await hm().scrollIntoViewIfNeeded();
    await ui.screenshot('08b-keyboard-cursor.png', { fullPage: false });
    await page.keyboard.press('Enter');
    await hm().locator('.hm-details').waitFor();
    assert.match(await hm().locator('.details-head').innerText(), /latency .*–/);
    await page.keyboard.press('Escape');
    assert.ok(await hm().locator('.hm-details').isHidden());
    assert.ok(await tip.isHidden());
    // and it stays dismissed while the live image moves on (a new one every second)
    await page.waitForTimeout(1500);
    assert.ok(await tip.isHidden());
  });

  await t.test('y range and scale: typed in units, or auto; linear or log', async () => {
    assert.equal(await hm().locator('select[name=yscale]').inputValue(), 'log'); // times: log
    let before = requests.length;
    await hm().locator('select[name=yscale]').selectOption('linear');
    await hm().locator('input[name=auto]').uncheck();
    await hm().locator('input[name=ymax]').fill('20ms');
    await hm().locator('input[name=ymax]').press('Enter');
    await hm().locator('input[name=ymax]').blur();
    await waitFor(() => requests.slice(before).some((u) => u.includes('/heatmap/image') &&
      u.includes('ymax=20000000') && !u.includes('yscale=log')), { what: 'an image of 0 to 20 ms, linear' });
    await waitFor(async () => Number(await hm().locator('.hm-plot').getAttribute('data-ymax')) === 20_000_000,
      { what: 'the image drawn to 20 ms' });
    const labels = await hm().locator('.axis-y span').allInnerTexts();
    assert.deepEqual(labels, ['0', '5 ms', '10 ms', '15 ms', '20 ms']);
    await ui.screenshot('09-heatmap-linear-20ms.png', { fullPage: false });
    // a value that does not read is refused where it is typed, and nothing is asked
    await hm().locator('input[name=ymax]').fill('fast');
    await hm().locator('input[name=ymax]').blur();
    assert.match(await hm().locator('input[name=ymax]').getAttribute('class'), /bad/);
    before = requests.length;
    await hm().locator('input[name=auto]').check();
    await hm().locator('select[name=yscale]').selectOption('log');
    await waitFor(() => requests.slice(before).some((u) => u.includes('/heatmap/image') &&
      !u.includes('ymax=') && u.includes('yscale=log')), { what: 'an auto-scaled log image' });
  });

  await t.test('scalar and discrete charts', async () => {
    const pred = { eq: ['execname', NAME] };
    const s = await api(ui, 'POST', '/ca/instrumentations', { module: 'syscall', stat: 'syscalls', predicate: pred });
    const d = await api(ui, 'POST', '/ca/instrumentations',
      { module: 'syscall', stat: 'syscalls', predicate: pred, decomposition: ['syscall'] });
    assert.equal(s.status, 201);
    assert.equal(d.status, 201);
    // the list picks them up by itself (every 5 s)
    const sp = page.locator(`.panel[data-id="${s.json.id}"]`);
    const dp = page.locator(`.panel[data-id="${d.json.id}"]`);
    await sp.locator('canvas.chart[data-end]').waitFor({ timeout: 15_000 });
    await dp.locator('canvas.chart[data-end]').waitFor({ timeout: 15_000 });
    await waitFor(async () => (await dp.locator('.legend li[data-key]').count()) >= 2,
      { ms: 10_000, what: 'the discrete chart\'s keys' });
    // top keys first, the rest summed last as "other"
    const legend = await dp.locator('.legend li[data-key]').evaluateAll((ls) =>
      ls.map((l) => [l.dataset.key, Number(l.querySelector('.muted').textContent.replace(/\s/g, ''))]));
    const named = legend.filter(([k]) => k !== 'other');
    assert.ok(named.length >= 2 && named.length <= 10, JSON.stringify(legend));
    for (let i = 1; i < named.length; i++) assert.ok(named[i - 1][1] >= named[i][1], JSON.stringify(legend));
    if (legend.some(([k]) => k === 'other')) assert.equal(legend[legend.length - 1][0], 'other');
    assert.ok(named.some(([k]) => ['execve', 'openat', 'mmap', 'read', 'close'].includes(k)), JSON.stringify(legend));
    // hover the scalar chart's last points: a number of syscalls per second
    const box = await sp.locator('canvas.chart').boundingBox();
    await page.mouse.move(box.x + box.width - 20, box.y + box.height / 2);
    await waitFor(async () => /\d\d:\d\d:\d\d/.test(await sp.locator('.hm-tip').innerText()), { what: 'a chart tooltip' });
    assert.match(await sp.locator('.hm-tip').innerText(), /\d+(\.\d+)?k? syscalls/);
    // the discrete chart's readout: the second's keys biggest first, each with its swatch.
    // The page is held still meanwhile: the legend re-ranks its top ten at every refresh and
    // the tooltip is drawn at a mouse move, so both must come from the same refresh.
    await page.click('button.pause');
    await sleep(1200); // a request in flight may still land
    const dbox = await dp.locator('canvas.chart').boundingBox();
    let dx = 20;
    await waitFor(async () => { // a second with two keys or more, from the newest back
      dx = dx >= dbox.width - 80 ? 20 : dx + 15;
      await page.mouse.move(dbox.x + dbox.width - dx, dbox.y + dbox.height / 2);
      await sleep(50);
      return (await dp.locator('.hm-tip .tip-key[data-key]').count()) >= 2;
    }, { ms: 15_000, what: 'a discrete tooltip of two keys or more' });
    const rows = await dp.locator('.hm-tip .tip-key[data-key]').evaluateAll((rs) => rs.map((r) => ({
      key: r.dataset.key,
      n: Number(r.querySelector('.tip-n').textContent.replace(/\s/g, '').replace(/k$/, 'e3')),
      swatch: getComputedStyle(r.querySelector('.swatch')).backgroundColor,
      legend: (() => {
        const li = [...r.closest('.panel').querySelectorAll('.legend li[data-key]')].find((l) => l.dataset.key === r.dataset.key);
        return li ? getComputedStyle(li.querySelector('.swatch')).backgroundColor : null;
      })(),
    })));
    const tipKeys = rows.filter((r) => r.key !== 'other');
    for (let i = 1; i < tipKeys.length; i++) assert.ok(tipKeys[i - 1].n >= tipKeys[i].n, JSON.stringify(rows));
    for (const r of rows) assert.equal(r.swatch, r.legend, `${r.key}: the tooltip's swatch is the legend's colour`);
    await ui.screenshot('10a-chart-tooltip.png', { fullPage: false });
    await page.click('button.pause'); // resume
    await waitFor(async () => (await page.locator('button.pause').innerText()) === 'Pause', { what: 'resumed' });
    await sp.scrollIntoViewIfNeeded();
    await ui.screenshot('10-charts.png');
  });

  await t.test('pause holds every panel still; resume follows the clock again', async () => {
    await page.click('button.pause');
    await sleep(1200); // a request in flight may still land
    const held = await updated(page, hmId);
    await sleep(2500);
    assert.equal(await updated(page, hmId), held, 'no update while paused');
    assert.equal(await page.locator('button.pause').innerText(), 'Resume');
    // paused is said for the whole page (a badge in the time bar) and on every panel
    const badge = page.locator('.paused-badge');
    assert.ok(await badge.isVisible());
    assert.match(await badge.innerText(), /^Paused at \d\d:\d\d:\d\d$/);
    assert.ok(await page.evaluate(() => document.body.classList.contains('is-paused')));
    for (const st of await page.locator('.panel .panel-status').allInnerTexts())
      assert.match(st, /^paused at \d\d:\d\d:\d\d/, 'every panel says paused');
    // paused panels still answer hovering and toggles on the interval they show
    await ui.screenshot('11-paused.png', { fullPage: false });
    await page.click('button.pause');
    assert.ok(await badge.isHidden());
    await waitFor(async () => (await updated(page, hmId)) > held, { ms: 8_000, what: 'an update after resuming' });
  });

  await t.test('a custom interval shows that interval', async () => {
    await page.click('button[data-range=custom]');
    // the times are typed on the clock the axes use: 24 hours, seconds, local time; Custom
    // opens on the minute shown
    const typed = await page.inputValue('input[name=custom-from]');
    assert.match(typed, /^\d{4}-\d\d-\d\d ([01]\d|2[0-3]):[0-5]\d:[0-5]\d$/);
    assert.equal(await page.locator('input[name=custom-from]').getAttribute('type'), 'text');
    const start = Math.floor(new Date(typed) / 1000);
    assert.equal(Math.floor(new Date(await page.inputValue('input[name=custom-to]')) / 1000), start + 60);
    await waitFor(async () => Number(await hm().locator('.hm-plot').getAttribute('data-start')) === start,
      { ms: 8_000, what: 'the heatmap of the interval' });
    assert.equal(await page.locator('button[data-range=custom]').getAttribute('aria-pressed'), 'true');
    await ui.screenshot('12-window.png', { fullPage: false });
    const pad = (x) => String(x).padStart(2, '0');
    const local = (sec) => {
      const d = new Date(sec * 1000);
      return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    };
    // an end after now would be in the future: it is moved back to now
    const now = Math.floor(Date.now() / 1000);
    await page.fill('input[name=custom-from]', local(now - 100));
    await page.fill('input[name=custom-to]', local(now + 3600));
    await page.click('.custom-box button');
    const end = Math.floor(new Date(await page.inputValue('input[name=custom-to]')) / 1000);
    assert.ok(end <= Date.now() / 1000 + 1, 'the interval ends by now');
    await waitFor(async () => Number(await hm().locator('.hm-plot').getAttribute('data-start')) === now - 100,
      { ms: 8_000, what: 'the heatmap of the interval ending now' });
    assert.ok(await hm().locator('.panel-error').isHidden(), await hm().locator('.panel-error').innerText());
    // a start typed in 24-hour time is the axes' time: its first label reads as typed
    // (within the instrumentation's retention, and three minutes before now)
    const at = local(Math.floor(Date.now() / 1000) - 180);
    const want = Math.floor(new Date(at) / 1000);
    await page.fill('input[name=custom-from]', at);
    await page.fill('input[name=custom-to]', local(want + 60));
    await page.press('input[name=custom-from]', 'Enter');
    await waitFor(async () => Number(await hm().locator('.hm-plot').getAttribute('data-start')) === want,
      { ms: 8_000, what: 'the heatmap of the typed interval' });
    assert.equal(await page.inputValue('input[name=custom-from]'), at);
    const labels = await hm().locator('.axis-x span').allInnerTexts();
    assert.ok(labels.length > 0 && labels.every((l) => /^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$/.test(l)), labels.join(' '));
    // a time that does not read is marked, and nothing changes
    await page.fill('input[name=custom-from]', 'yesterday at 3 pm');
    await page.press('input[name=custom-from]', 'Enter');
    assert.match(await page.locator('input[name=custom-from]').getAttribute('class'), /bad/);
    await page.click('button[data-range="60"]');
  });

  let cloneId = -1;
  await t.test('clone, delete, and an instrumentation deleted elsewhere', async () => {
    const n0 = await page.locator('.panel').count();
    await hm().locator('button', { hasText: 'Clone' }).click();
    await waitFor(async () => (await page.locator('.panel').count()) === n0 + 1, { ms: 10_000, what: 'the clone\'s panel' });
    const ids = await page.locator('.panel').evaluateAll((ps) => ps.map((p) => Number(p.dataset.id)));
    const clone = Math.max(...ids);
    cloneId = clone;
    const got = await api(ui, 'GET', `/ca/instrumentations/${clone}`);
    assert.deepEqual(got.json.decomposition, ['execname', 'latency']);
    page.once('dialog', (dlg) => dlg.accept());
    await page.locator(`.panel[data-id="${clone}"] button`, { hasText: 'Delete' }).click();
    await page.locator('.notice', { hasText: `#${clone} was deleted` }).waitFor();
    assert.equal((await api(ui, 'GET', `/ca/instrumentations/${clone}`)).status, 404);
    // deleted by someone else: the panel says so
    assert.equal((await api(ui, 'DELETE', `/ca/instrumentations/${hmId}`)).status, 204);
    const note = page.locator('.notice', { hasText: `#${hmId} no longer exists` });
    await note.waitFor({ timeout: 10_000 });
    await note.scrollIntoViewIfNeeded();
    await ui.screenshot('13-deleted.png', { fullPage: false });
  });

  await t.test('a narrow window: the heatmap fits, nothing scrolls sideways', async () => {
    const id = (await api(ui, 'POST', '/ca/instrumentations',
      { module: 'syscall', stat: 'syscalls', decomposition: ['latency'], 'retention-time': 120 })).json.id;
    await page.setViewportSize({ width: 700, height: 900 });
    const p = page.locator(`.panel[data-id="${id}"]`);
    await p.locator('.hm-plot[data-start]').waitFor({ timeout: 15_000 });
    await sleep(1500);
    const widths = await page.evaluate((i) => ({
      doc: document.documentElement.scrollWidth,
      canvas: document.querySelector(`.panel[data-id="${i}"] canvas.hm-image`).getBoundingClientRect().right,
    }), id);
    assert.ok(widths.doc <= 700, JSON.stringify(widths));
    assert.ok(widths.canvas <= 700, JSON.stringify(widths));
    await ui.screenshot('14-narrow.png', { fullPage: false });
    // five minutes of an instrumentation that keeps two: the panel says why most is blank
    assert.ok(await p.locator('.ret-note').isHidden());
    await page.click('button[data-range="300"]');
    await p.locator('.ret-note').waitFor({ timeout: 8_000 });
    assert.equal(await p.locator('.ret-note').innerText(), 'This instrumentation keeps 2m: older seconds are blank.');
    await page.click('button[data-range="60"]');
    await p.locator('.ret-note').waitFor({ state: 'hidden', timeout: 8_000 });
  });

  await t.test('420 px wide: every view usable, nothing scrolls sideways', async () => {
    await page.setViewportSize({ width: 420, height: 860 });
    const wide = () => page.evaluate(() => {
      const W = document.documentElement.clientWidth;
      const out = [...document.querySelectorAll('body *')].filter((e) => {
        if (!e.getClientRects().length || e.closest('[hidden], .legend, .hm-details, .metric-card, .create-preview, option')) return false;
        const r = e.getBoundingClientRect();
        return r.right > W + 1 && getComputedStyle(e).position !== 'absolute';
      }).slice(0, 5).map((e) => `${e.tagName}.${e.className}: ${Math.round(e.getBoundingClientRect().right)}`);
      return { scroll: document.documentElement.scrollWidth, W, out };
    });
    for (const [route, ready, shot] of [
      ['/#/', '.panel .hm-plot[data-start]', '15-420-live.png'],
      ['/#/new', '#new-form', '15-420-new.png'],
      ['/#/catalog', '.metric-card', '15-420-catalog.png'],
      ['/#/dashboards', '.dash-new', '15-420-dashboards.png'],
    ]) {
      await ui.goto(route);
      await page.locator(ready).first().waitFor({ timeout: 15_000 });
      await sleep(800);
      const w = await wide();
      assert.ok(w.scroll <= 420, `${route}: scrolls sideways: ${JSON.stringify(w)}`);
      assert.deepEqual(w.out, [], `${route}: past the right edge`);
      await ui.screenshot(shot);
    }
    // the time controls and a panel's controls are reachable
    await ui.goto('/#/');
    await page.locator('.panel .hm-plot[data-start]').first().waitFor({ timeout: 15_000 });
    for (const sel of ['button.pause', 'button[data-range=custom]', '.panel select[name=yscale]', 'nav a[data-nav=catalog]']) {
      const b = await page.locator(sel).first().boundingBox();
      assert.ok(b && b.x >= 0 && b.x + b.width <= 420, `${sel} on screen: ${JSON.stringify(b)}`);
    }
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  await t.test('dark theme: a dark page, readable text', async () => {
    await page.emulateMedia({ colorScheme: 'dark' });
    await ui.goto('/#/');
    await page.locator('.panel canvas.chart[data-end]').first().waitFor({ timeout: 15_000 });
    await sleep(1500); // a chart redrawn in the theme
    const colours = await page.evaluate(() => {
      const rgb = (c) => (c.match(/[\d.]+/g) || []).slice(0, 3).map(Number);
      const lum = ([r, g, b]) => {
        const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
      };
      const contrast = (a, b) => (Math.max(lum(a), lum(b)) + 0.05) / (Math.min(lum(a), lum(b)) + 0.05);
      const bg = rgb(getComputedStyle(document.documentElement).backgroundColor);
      const card = rgb(getComputedStyle(document.querySelector('.panel')).backgroundColor);
      const text = rgb(getComputedStyle(document.querySelector('.panel h2')).color);
      const muted = rgb(getComputedStyle(document.querySelector('.panel-meta .muted')).color);
      const btn = document.querySelector('button.pause');
      const c = document.querySelector('.panel canvas.chart');
      const px = c.getContext('2d').getImageData(2, 2, 1, 1).data;
      return { bg: lum(bg), card: lum(card), text: contrast(text, card), muted: contrast(muted, card),
        button: contrast(rgb(getComputedStyle(btn).color), rgb(getComputedStyle(btn).backgroundColor)),
        chart: lum([px[0], px[1], px[2]]) };
    });
    assert.ok(colours.bg < 0.03, `a dark background: ${JSON.stringify(colours)}`);
    assert.ok(colours.card < 0.05, `dark panels: ${JSON.stringify(colours)}`);
    assert.ok(colours.text >= 7, `text readable (contrast ≥ 7): ${JSON.stringify(colours)}`);
    assert.ok(colours.muted >= 4.5, `muted text readable (≥ 4.5): ${JSON.stringify(colours)}`);
    assert.ok(colours.button >= 4.5, `buttons readable: ${JSON.stringify(colours)}`);
    assert.ok(colours.chart < 0.05, `charts drawn dark: ${JSON.stringify(colours)}`);
    await ui.screenshot('16-dark.png', { fullPage: false });
    await ui.goto('/#/new');
    await page.locator('#new-form').waitFor();
    await ui.screenshot('16-dark-new.png', { fullPage: false });
    await page.emulateMedia({ colorScheme: 'light' });
    await ui.goto('/#/');
    await page.locator('.panel').first().waitFor();
    assert.ok(await page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor) === 'rgb(248, 250, 252)');
  });

  await t.test('the header names the server\'s host', async () => {
    const host = page.locator('header .host');
    await host.waitFor();
    assert.equal(await host.innerText(), os.hostname());
    const self = await (await fetch(new URL('/', ui.serve.url), { headers: { Accept: 'application/json' } })).json();
    assert.equal(self.host, os.hostname());
    assert.match(await page.title(), new RegExp(`^${os.hostname()} — Sonde$`));
  });

  // what the browser logs of the errors this test provokes (the refused create; the
  // instrumentation deleted behind the page's back; a refresh of the clone already in flight
  // when it is deleted), and nothing else
  const expected = [/status of 409 .*\/ca\/instrumentations:/,
    new RegExp(`status of 404 .*/ca/instrumentations/(${hmId}|${cloneId})/`)];
  assert.deepEqual(ui.errors.filter((e) => !expected.some((re) => re.test(e))), [], 'errors in the page');
});
