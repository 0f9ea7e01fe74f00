// Spans beside the kernel's heatmaps, in headless Chromium against a real `sonde serve`
// (docs/tracing.md): a service's spans (Zipkin v2 JSON, posted as an exporter would, a new
// trace every 300 ms: checkout 80 ms > payments 60 ms > db 20 ms with an error) become a
// trace.spans heatmap by service; a click on the cell of the 80 ms spans lists their traces
// (exemplars); a trace opens as a waterfall (spans nested by parent on a time axis, errors
// marked), and a click on a span shows its attributes. Screenshots go to SONDE_UI_OUT, as
// trace-*.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, uiSession, waitFor } from './support.mjs';

const hashParams = (url) => new URLSearchParams(new URL(url).hash.split('?')[1] || '');
const hex = (n, len) => n.toString(16).padStart(len, '0');

// One trace ending now: checkout (80 ms) > payments (60 ms) > db (20 ms, an error).
function traceOf(i) {
  const id = hex(0x5eed0000 + i, 32), t = Date.now() * 1000 - 85_000;
  const span = (n, parent, name, svc, off, dur, extra = {}) => ({
    traceId: id, id: hex(0xa000 + i * 4 + n, 16), ...(parent ? { parentId: hex(0xa000 + i * 4 + parent, 16) } : {}),
    name, timestamp: t + off, duration: dur, localEndpoint: { serviceName: svc }, ...extra,
  });
  return [
    span(1, 0, 'post /checkout', 'checkout', 0, 80_000, { kind: 'SERVER', tags: { 'http.method': 'POST' } }),
    span(2, 1, 'charge', 'payments', 10_000, 60_000, { kind: 'SERVER' }),
    span(3, 2, 'select card', 'db', 30_000, 20_000, { kind: 'CLIENT', tags: { error: 'timeout', 'db.system': 'postgresql' } }),
  ];
}

test('span latency heatmap, exemplars and the trace waterfall', { timeout: 180_000 }, async (t) => {
  const ui = await uiSession(t, { page: { viewport: { width: 1280, height: 1000 } } });
  const { page } = ui;
  const created = await api(ui, 'POST', '/ca/instrumentations',
    { module: 'trace', stat: 'spans', decomposition: ['service', 'latency'] });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const id = created.json.id;
  // spans fed in the background, stopped (its last request answered) before the test ends:
  // the session's own t.after stops the server, which must not cut a request in flight
  let n = 0, stop = false;
  const feed = (async () => {
    while (!stop && n < 600) {
      const r = await api(ui, 'POST', '/api/v2/spans', traceOf(n++));
      assert.equal(r.status, 202);
      await new Promise((res) => setTimeout(res, 300));
    }
  })();
  const stopFeed = async () => {
    stop = true;
    await feed;
  };
  t.after(stopFeed); // on a failure before the end (the feed then ends by itself within 300 ms)

  await ui.goto('/');
  const sel = `.panel[data-id="${id}"]`;
  const hm = page.locator(sel);
  await hm.locator('.hm-plot[data-start]').waitFor({ timeout: 15_000 });
  await page.waitForTimeout(3_000); // a few seconds of spans on screen
  // paused: the image, and the window its columns map to, stay put while the test finds the
  // 80 ms cell through the details API and clicks it (live, the window moves a second at each
  // refresh, and a search slowed by a loaded machine would click a newer second than it found)
  await page.click('button.pause');
  await waitFor(() => hashParams(page.url()).has('at'), { what: 'the paused time in the URL' });
  const at = Number(hashParams(page.url()).get('at'));
  await waitFor(async () => {
    const p = hm.locator('.hm-plot');
    return Number(await p.getAttribute('data-start')) + Number(await p.getAttribute('data-duration')) === at;
  }, { what: 'the heatmap shows the interval ending at the pause' });

  await t.test('a click on the cell of the 80 ms spans lists their traces', async () => {
    const s = await page.evaluate((q) => {
      const p = document.querySelector(`${q} .hm-plot`);
      const c = p.querySelector('canvas.hm-image');
      return { ymin: 0, ymax: Number(p.dataset.ymax), W: c.width, H: c.height,
        n: Math.round(Number(p.dataset.duration) / Number(p.dataset.granularity)) };
    }, sel);
    assert.ok(s.ymax > 80e6, `ymax ${s.ymax}`);
    const b = await hm.locator('canvas.hm-overlay').boundingBox();
    // in the third column from the newest, the row whose band holds 80 ms: the server says
    // each row's band (details' bucket_ymin, bucket_ymax), decreasing down the image
    const xOf = (col) => Math.floor((Math.floor((col * s.W) / s.n) + Math.floor(((col + 1) * s.W) / s.n) - 1) / 2);
    let x = xOf(s.n - 3);
    const params = await page.evaluate((sl) => {
      const p = document.querySelector(`${sl} .hm-plot`);
      return { start_time: p.dataset.start, duration: p.dataset.duration, yscale: p.dataset.yscale, ymax: p.dataset.ymax };
    }, sel);
    const band = async (yy, xx = x) => (await api(ui, 'GET', `/ca/instrumentations/${id}/value/heatmap/details?` +
      `width=${s.W}&height=${s.H}&ymin=0&ymax=${params.ymax}&yscale=${params.yscale}` +
      `&start_time=${params.start_time}&duration=${params.duration}&x=${xx}&y=${yy}`)).json;
    const first = async (pred) => { // the first y (from the top) where pred holds of its band
      let lo = 0, hi = s.H;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (pred(await band(mid))) hi = mid;
        else lo = mid + 1;
      }
      return lo;
    };
    const top = await first((d) => d.bucket_ymin <= 80e6); // the band holding 80 ms starts here
    const below = await first((d) => d.bucket_ymax <= 80e6 && d.bucket_ymin < 80e6 && d.bucket_ymax < 80e6);
    const y = Math.floor((top + Math.max(top + 1, below) - 1) / 2); // and its middle row of pixels
    // a loaded machine can leave a second without spans (the feed sends one every 300 ms): the
    // newest column of the paused window, from the third from the end back, that has them
    for (let col = s.n - 3, tries = 0; tries < 10; col--, tries++) {
      if ((await band(y, xOf(col))).total > 0) {
        x = xOf(col);
        break;
      }
    }
    await page.mouse.click(b.x + ((x + 0.5) * b.width) / s.W, b.y + ((y + 0.5) * b.height) / s.H);
    const links = hm.locator('.hm-details .exemplars a.trace-link');
    const reply = page.waitForResponse((r) => r.url().includes('/heatmap/details'), { timeout: 10_000 });
    try {
      await links.first().waitFor({ timeout: 10_000 });
    } catch (e) {
      await ui.screenshot('trace-exemplars-failed');
      const r = await reply.catch(() => null);
      throw new Error(`no exemplars at (${x}, ${y}) of ${JSON.stringify(s)}: details say ` +
        `${await hm.locator('.hm-details').textContent()}; ${r ? `${r.url()} -> ${await r.text()}` : 'no reply'}`);
    }
    const rows = await hm.locator('.hm-details .exemplars tbody tr').allTextContents();
    assert.ok(rows.length >= 1 && rows.length <= 5, rows.join(' | '));
    assert.ok(rows.every((r) => r.includes('checkout') && r.includes('post /checkout')), rows.join(' | '));
    await ui.screenshot('trace-exemplars');
  });

  await t.test('a trace opens as a waterfall; a span shows its attributes', async () => {
    const link = hm.locator('.hm-details .exemplars a.trace-link').first();
    const href = await link.getAttribute('href');
    const traceId = decodeURIComponent(href.replace('#/trace/', ''));
    await link.click();
    await page.locator('.waterfall .wf-row').nth(2).waitFor({ timeout: 10_000 });
    assert.equal(await page.locator('h1 code').textContent(), traceId);
    const names = await page.locator('.waterfall .wf-row .wf-op').allTextContents();
    assert.deepEqual(names, ['post /checkout', 'charge', 'select card']);
    const pads = await page.locator('.waterfall .wf-name').evaluateAll((els) => els.map((e) => e.style.paddingLeft));
    assert.deepEqual(pads, ['0px', '14px', '28px']);
    // bars on one time axis: the root spans it all, the db span starts 3/8 in and lasts 1/4
    const bars = await page.locator('.waterfall .wf-bar').evaluateAll((els) => els.map((e) => [parseFloat(e.style.left), parseFloat(e.style.width)]));
    assert.deepEqual(bars[0], [0, 100]);
    assert.ok(Math.abs(bars[2][0] - 37.5) < 0.01 && Math.abs(bars[2][1] - 25) < 0.01, JSON.stringify(bars));
    assert.equal(await page.locator('.wf-bar').nth(2).evaluate((e) => e.style.background), 'rgb(220, 38, 38)');
    assert.match(await page.locator('.trace-summary').textContent(), /80(\.0)? ms · 3 spans · 3 services · 1 with errors/);
    await page.locator('.waterfall .wf-row').nth(2).click();
    const attrs = await page.locator('.span-attrs').textContent();
    assert.match(attrs, /select card/);
    assert.match(attrs, /errortimeout/);
    assert.match(attrs, /db\.systempostgresql/);
    await ui.screenshot('trace-waterfall');
    ui.assertNoErrors();
  });
  await stopFeed();
});
