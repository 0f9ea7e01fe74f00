// History in the web UI, in headless Chromium against a real `sonde serve --no-agent` whose
// data comes by `POST /ca/ingest` (recent seconds; past ones will come by /ca/import):
//   - the time bar's ranges send the right requests: 1 min and 5 min live (a duration, the end
//     left to the server), 1 h, 6 h, 24 h, 7 d and 30 d as start_time and duration ending
//     now, for heatmaps and charts; a history range is asked again no faster than every 10 s;
//   - dragging across a heatmap draws a band and zooms every panel into the columns dragged
//     over (a custom range: from=START&len=SECONDS), Back returns to the range before;
//   - a custom range typed in the bar (local time) is what is asked;
//   - each panel says its resolution ("1 s resolution"); with the store's server side, it is
//     the reply's "granularity" and "tier" (those assertions are skipped by a server whose
//     replies do not carry them yet);
//   - axes of 7 d and 30 d are labelled with dates;
//   - the create form keeps history by default (persist-data checked, and said).
// Screenshots go to SONDE_UI_OUT (tests/out/ui of the build), as hist-*.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, sleep, uiSession, waitFor } from './support.mjs';

const KEYS = ['snh-alpha', 'snh-beta'];
const TIERS = ['raw', '1m', '1h', '1d'];
const nowSec = () => Math.floor(Date.now() / 1000);

// The column drawn under pixel x when n columns share w pixels (ui/js/heatmap.js columnAt).
function columnAt(x, w, n) {
  let i = Math.min(n - 1, Math.max(0, Math.floor((x * n) / w)));
  while (i + 1 < n && Math.floor(((i + 1) * w) / n) <= x) i++;
  while (i > 0 && Math.floor((i * w) / n) > x) i--;
  return i;
}

// Frames of seconds [from, to) for the heatmap instrumentation id: 2 ms and 20 ms events.
function frames(id, from, to) {
  const out = [];
  for (let t = from; t < to; t++) {
    out.push({ v: 1, id: String(id), host: 'snh-host', t, arity: 'numeric-decomposition',
      value: { [KEYS[0]]: [[[2000000, 2099999], 10 + (t % 7)]], [KEYS[1]]: [[[20000000, 20999999], 3]] },
      drops: { over_cap: 0, map_full: 0 } });
  }
  return out;
}

test('history: ranges, drag-zoom, resolution', { timeout: 240_000 }, async (t) => {
  const ui = await uiSession(t, { serve: { args: ['--no-agent'] },
    page: { viewport: { width: 1280, height: 1000 } } });
  const { page } = ui;
  const H = (await api(ui, 'POST', '/ca/instrumentations', { module: 'syscall', stat: 'syscalls',
    decomposition: ['execname', 'latency'], 'persist-data': true })).json.id;
  const C = (await api(ui, 'POST', '/ca/instrumentations', { module: 'syscall', stat: 'syscalls',
    decomposition: ['execname'], 'persist-data': true })).json.id;
  assert.ok(H && C, 'instrumentations created');
  // the last two minutes, and a second more every second while the test runs
  const ing = await api(ui, 'POST', '/ca/ingest', frames(H, nowSec() - 120, nowSec()));
  assert.equal(ing.status, 200, JSON.stringify(ing.json));
  assert.ok(ing.json.accepted > 100, JSON.stringify(ing.json));
  let feeding = true;
  const feeder = (async () => {
    for (let i = 0; feeding && i < 400; i++) {
      await sleep(1000);
      const s = nowSec() - 1;
      await api(ui, 'POST', '/ca/ingest', frames(H, s, s + 1)).catch(() => {});
    }
  })();
  t.after(async () => {
    feeding = false;
    await feeder;
  });

  // every request the page makes, with when it made it
  const requests = [];
  page.on('request', (r) => requests.push({ url: new URL(r.url()), at: Date.now() }));
  const images = [];
  page.on('response', async (r) => {
    if (!r.url().includes(`/instrumentations/${H}/value/heatmap/image`)) return;
    try {
      images.push({ url: new URL(r.url()), json: await r.json() });
    } catch {
      // aborted, or an error without a body
    }
  });
  const param = (r, k) => (r.url.searchParams.has(k) ? Number(r.url.searchParams.get(k)) : null);
  const isImage = (r) => r.url.pathname.endsWith(`/instrumentations/${H}/value/heatmap/image`);
  const isChart = (r) => r.url.pathname.endsWith(`/instrumentations/${C}/value/raw`);
  const hp = page.locator(`.panel[data-id="${H}"]`);
  const cp = page.locator(`.panel[data-id="${C}"]`);
  const plot = hp.locator('.hm-plot');
  const hashParams = () => new URLSearchParams(page.url().split('#')[1].split('?')[1] || '');

  await ui.goto('/');
  await plot.locator('canvas.hm-image').waitFor();
  await waitFor(async () => (await plot.getAttribute('data-start')) !== null, { ms: 15_000, what: 'the first image' });

  await t.test('each panel says its resolution', async () => {
    for (const p of [hp, cp]) {
      await waitFor(async () => /^\d+ (s|min|h|d) resolution$/.test(await p.locator('.panel-res').innerText()),
        { what: 'a resolution label' });
      assert.ok(await p.locator('.panel-res').isVisible());
    }
    // live, a minute at one column a second on a server without a store, or the reply's
    const shown = images.at(-1).json;
    const g = shown.granularity ?? 1;
    await waitFor(async () => Number(await hp.getAttribute('data-granularity')) === g, { what: `granularity ${g}` });
    assert.equal(await hp.locator('.panel-res').innerText(), g === 60 ? '1 min resolution' : `${g} s resolution`);
  });

  await t.test('the reply\'s granularity and tier are shown (needs the store\'s server side)', async (st) => {
    const shown = images.at(-1).json;
    if (!('granularity' in shown)) {
      st.skip('this server\'s replies carry no "granularity" yet');
      return;
    }
    assert.ok(TIERS.includes(shown.tier), `tier ${shown.tier}`);
    await waitFor(async () => (await hp.getAttribute('data-tier')) === images.at(-1).json.tier, { what: 'the tier' });
    assert.match(await hp.locator('.panel-res').getAttribute('title'), new RegExp(shown.tier === 'raw' ? 'raw data' : `${shown.tier} rollups`));
    // a heatmap's columns are duration / granularity
    assert.equal(Number(await plot.getAttribute('data-granularity')), shown.granularity);
  });

  // The first request of panel kind `is` made after `since`.
  const firstAfter = (since, is, what) => waitFor(() => requests.find((r) => r.at >= since && is(r)),
    { ms: 10_000, what });

  await t.test('the ranges send start_time and duration', async () => {
    for (const [r, live] of [[300, true], [3600, false], [21600, false], [86400, false], [604800, false],
      [2592000, false], [60, true]]) {
      const since = Date.now();
      await page.click(`button[data-range="${r}"]`);
      assert.equal(await page.locator(`button[data-range="${r}"]`).getAttribute('aria-pressed'), 'true');
      // (a request of the range before may still leave meanwhile)
      const img = await firstAfter(since, (q) => isImage(q) && param(q, 'duration') === r, `an image of ${r} s`);
      const chart = await firstAfter(since, (q) => isChart(q) &&
        (live ? param(q, 'start_time') === null : param(q, 'duration') * param(q, 'ndatapoints') === r), `a chart's points of ${r} s`);
      if (live) {
        // the end is the server's (its latest complete slot), held until it is complete
        assert.equal(param(img, 'start_time'), null, img.url.search);
        assert.equal(param(img, 'timeout'), 2000, img.url.search);
        await waitFor(() => hashParams().get('t') === (r === 60 ? null : String(r)), { what: `t=${r} in the URL` });
      } else {
        // a range ending now: [now − r, now)
        const end = param(img, 'start_time') + param(img, 'duration');
        assert.ok(Math.abs(end - nowSec()) <= 3, `${img.url.search} ends at ${end}, now ${nowSec()}`);
        assert.equal(param(img, 'timeout'), 0, img.url.search);
        // a chart asks whole steps, at most 360 points, over the same interval
        const [s, d, n] = ['start_time', 'duration', 'ndatapoints'].map((k) => param(chart, k));
        assert.ok(s !== null && n >= 1 && n <= 360, chart.url.search);
        assert.equal(d * n, r, chart.url.search);
        assert.ok(Math.abs(s + d * n - nowSec()) <= d + 3, chart.url.search);
        await waitFor(() => hashParams().get('t') === String(r), { what: `t=${r} in the URL` });
      }
    }
  });

  await t.test('axes of a week and a month are dated', async (st) => {
    for (const r of [604800, 2592000]) {
      await page.click(`button[data-range="${r}"]`);
      await waitFor(async () => Number(await plot.getAttribute('data-duration')) === r, { ms: 10_000, what: `an image of ${r} s` })
        .catch((e) => st.diagnostic(`no image of ${r} s drawn (${e.message}): needs the store's server side`));
      if (Number(await plot.getAttribute('data-duration')) !== r) continue;
      const labels = await hp.locator('.axis-x span').allInnerTexts();
      assert.ok(labels.length >= 2, labels.join(' '));
      assert.ok(labels.every((l) => /^\d{1,2} [A-Z][a-z]{2}$|^\d\d:\d\d$/.test(l)), labels.join(' '));
      assert.ok(labels.some((l) => /^\d{1,2} [A-Z][a-z]{2}$/.test(l)), labels.join(' '));
      await ui.screenshot(`hist-01-${r}.png`, { fullPage: false });
    }
  });

  await t.test('a range of history is asked again no faster than every 10 s', async () => {
    const t0 = Date.now();
    await page.click('button[data-range="3600"]');
    const first = await firstAfter(t0, (q) => isImage(q) && param(q, 'duration') === 3600, 'an image of the hour');
    const since = first.at;
    const next = await waitFor(() => requests.find((r) => r.at > since + 100 && isImage(r)), { ms: 16_000, what: 'the next image' });
    assert.ok(next.at - since >= 9_500, `asked again after ${next.at - since} ms`);
    assert.equal(param(next, 'duration'), 3600);
  });

  await t.test('dragging across the heatmap zooms every panel into those columns; Back returns', async () => {
    await waitFor(async () => Number(await plot.getAttribute('data-duration')) === 3600, { what: 'an hour drawn' });
    const s = await plot.evaluate((p) => ({ start: Number(p.dataset.start), duration: Number(p.dataset.duration),
      g: Number(p.dataset.granularity), W: p.querySelector('canvas.hm-image').width,
      H: p.querySelector('canvas.hm-image').height }));
    const b = await hp.locator('canvas.hm-overlay').boundingBox();
    const px = (x) => b.x + ((x + 0.5) * b.width) / s.W;
    const y = b.y + b.height / 2;
    let xa = Math.floor(s.W * 0.3), xb = Math.floor(s.W * 0.62);
    await page.mouse.move(px(xa), y);
    await page.mouse.down();
    await page.mouse.move(px(xb), y, { steps: 8 });
    // the band is drawn while dragging, over the pixels dragged across
    const band = await waitFor(async () => {
      const v = await plot.getAttribute('data-band');
      const [x0, x1] = v ? v.split(',').map(Number) : [];
      return v && Math.abs(x0 - xa) <= 1 && Math.abs(x1 - xb) <= 1 ? [x0, x1] : null;
    }, { what: 'the band' });
    [xa, xb] = band;
    const n = Math.round(s.duration / s.g);
    const ca = columnAt(xa, s.W, n), cb = columnAt(xb, s.W, n);
    const want = { start: s.start + ca * s.g, len: (cb - ca + 1) * s.g };
    // the dragged pixels' times are those columns' (within a column, and a pixel's time)
    const tOf = (x) => s.start + (x * s.duration) / s.W, slack = s.g + s.duration / s.W;
    assert.ok(Math.abs(tOf(xa) - want.start) < slack, `${tOf(xa)} ~ ${want.start}`);
    assert.ok(Math.abs(tOf(xb + 1) - (want.start + want.len)) < slack, `${tOf(xb + 1)} ~ ${want.start + want.len}`);
    const tinted = await hp.locator('canvas.hm-overlay').evaluate((o, [x0, x1]) => {
      const d = o.getContext('2d').getImageData(0, 0, o.width, o.height).data;
      const alpha = (x, yy) => d[(yy * o.width + x) * 4 + 3];
      const mid = Math.floor(o.height / 2);
      return { in: alpha(Math.floor((x0 + x1) / 2), mid), out: alpha(Math.max(0, x0 - 10), mid) };
    }, [xa, xb]);
    assert.ok(tinted.in > 0, JSON.stringify(tinted));
    await ui.screenshot('hist-02-dragging.png', { fullPage: false });
    // the live hour may have been redrawn meanwhile (every 10 s, a later start): the zoom takes
    // the columns of the image drawn when the button goes up
    const s2 = await plot.evaluate((p) => ({ start: Number(p.dataset.start), g: Number(p.dataset.granularity),
      duration: Number(p.dataset.duration) }));
    if (s2.start !== s.start || s2.g !== s.g) {
      const n2 = Math.round(s2.duration / s2.g), a2 = columnAt(xa, s.W, n2), b2 = columnAt(xb, s.W, n2);
      want.start = s2.start + a2 * s2.g;
      want.len = (b2 - a2 + 1) * s2.g;
    }
    const since = Date.now();
    await page.mouse.up();
    // a custom range of those columns, for every panel
    await waitFor(() => hashParams().get('from') === String(want.start) && hashParams().get('len') === String(want.len),
      { what: `from=${want.start}&len=${want.len} in the URL (${page.url()})` });
    assert.equal(await page.locator('button[data-range=custom]').getAttribute('aria-pressed'), 'true');
    const img = await firstAfter(since, isImage, 'the zoomed image');
    assert.equal(param(img, 'start_time'), want.start, img.url.search);
    assert.equal(param(img, 'duration'), want.len, img.url.search);
    const chart = await firstAfter(since, isChart, 'the zoomed chart');
    assert.equal(param(chart, 'start_time') <= want.start && param(chart, 'start_time') + param(chart, 'duration') > want.start, true,
      chart.url.search);
    await waitFor(async () => Number(await plot.getAttribute('data-start')) === want.start, { what: 'the zoomed image drawn' });
    assert.equal(await plot.getAttribute('data-band'), null, 'the band goes');
    assert.ok(await hp.locator('.hm-details').isHidden(), 'a drag is not a click');
    // the custom inputs say it, on the local clock
    const local = (sec) => page.evaluate((x) => {
      const d = new Date(x * 1000), p = (v) => String(v).padStart(2, '0');
      return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
    }, sec);
    assert.equal(await page.inputValue('input[name=custom-from]'), await local(want.start));
    assert.equal(await page.inputValue('input[name=custom-to]'), await local(want.start + want.len));
    await ui.screenshot('hist-03-zoomed.png', { fullPage: false });
    // Back: the hour again, live
    assert.ok(await page.locator('button.back').isVisible());
    await page.click('button.back');
    assert.equal(await page.locator('button[data-range="3600"]').getAttribute('aria-pressed'), 'true');
    await waitFor(() => hashParams().get('t') === '3600', { what: 't=3600 in the URL' });
    assert.ok(await page.locator('button.back').isHidden());
    await waitFor(async () => Number(await plot.getAttribute('data-duration')) === 3600, { what: 'the hour drawn again' });
    // a plain click still opens a cell's details
    await page.mouse.click(px(s.W - 3), y);
    await hp.locator('.hm-details').waitFor({ timeout: 8_000 });
  });

  await t.test('a custom range typed in the bar is what is asked', async () => {
    const to = nowSec() - 30, from = to - 90;
    await page.click('button[data-range=custom]');
    const local = (sec) => page.evaluate((x) => {
      const d = new Date(x * 1000), p = (v) => String(v).padStart(2, '0');
      return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
    }, sec);
    await page.fill('input[name=custom-from]', await local(from));
    await page.fill('input[name=custom-to]', await local(to));
    const since = Date.now();
    await page.press('input[name=custom-to]', 'Enter');
    const img = await firstAfter(since, isImage, 'the custom image');
    assert.equal(param(img, 'start_time'), from, img.url.search);
    assert.equal(param(img, 'duration'), 90, img.url.search);
    await waitFor(() => hashParams().get('from') === String(from) && hashParams().get('len') === '90', { what: 'the URL' });
    // an end before the start is marked, and nothing changes
    await page.fill('input[name=custom-to]', await local(from - 10));
    await page.press('input[name=custom-to]', 'Enter');
    assert.match(await page.locator('input[name=custom-to]').getAttribute('class'), /bad/);
    assert.equal(hashParams().get('from'), String(from));
    await page.click('button[data-range="60"]');
  });

  await t.test('the create form keeps history by default', async () => {
    await ui.goto('/#/new');
    const persist = page.locator('input[name=persist]');
    await persist.waitFor();
    assert.equal(await persist.isChecked(), true);
    const label = await page.locator('label.persist').innerText();
    assert.match(label, /90 days/);
    assert.match(label, /1-minute/);
    assert.match(label, /hourly data for years/);
    assert.match(await page.locator('pre.create-preview').innerText(), /"persist-data": true/);
    await persist.uncheck();
    assert.doesNotMatch(await page.locator('pre.create-preview').innerText(), /persist-data/);
  });

  // a server without the store refuses durations over an hour (409, 400): the page says so in
  // the panel, and Chromium logs the failed load; nothing else may go wrong
  const errors = ui.errors.filter((e) => !/Failed to load resource: the server responded with a status of 40[09]/.test(e));
  assert.deepEqual(errors, [], 'errors in the page');
});
