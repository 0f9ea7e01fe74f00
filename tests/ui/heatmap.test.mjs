// The live heatmap panel in headless Chromium against a real `sonde serve` and its agent,
// watching a workload with a known name ("snhm-sleeper", /bin/sleep copied under that name,
// 2 ms sleeps in a loop):
//   - requests: shading by count (coloring=linear) by default, rank on demand; exact
//     percentile lines (method=exact); the colour scale tells the largest count of a cell;
//   - hover names the cell under a still pointer as the image scrolls under it;
//   - a click opens the cell under the pointer at that moment, the same second the tooltip
//     named; that cell is outlined, the outline moves with its second and goes once the
//     second scrolls out; from the keyboard, Enter chooses the cursor's cell, Escape lets go;
//   - the legend: biggest keys first with their counts, "N more", a search box;
//   - the details' swatches take a key's hue once it is selected;
//   - the tooltip lists keys with swatches by count;
//   - at least four y ticks, in round units, log and linear.
// Screenshots go to SONDE_UI_OUT (tests/out/ui of the build), as hm-*.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, sleep, startWorkload, uiSession, waitFor } from './support.mjs';

const NAME = 'snhm-sleeper';
const GREEN = 'rgb(53, 242, 24)'; // the first selected key's hue, 112°, at full intensity
const ORANGE = 'rgb(242, 101, 24)'; // the rest's, 21°

test('the heatmap panel', { timeout: 240_000 }, async (t) => {
  const work = startWorkload(NAME);
  t.after(() => work.stop());
  const ui = await uiSession(t, { page: { viewport: { width: 1280, height: 1000 } } });
  const { page } = ui;
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  const created = await api(ui, 'POST', '/ca/instrumentations',
    { module: 'syscall', stat: 'syscalls', decomposition: ['execname', 'latency'] });
  assert.equal(created.status, 201);
  const id = created.json.id;
  await ui.goto('/');
  const hm = page.locator(`.panel[data-id="${id}"]`);
  await hm.locator('.hm-plot[data-start]').waitFor({ timeout: 15_000 });
  const sel = `.panel[data-id="${id}"]`;

  // what the panel shows now: the image's start, size and columns, the chosen cell's box,
  // the tooltip's second
  const state = () => page.evaluate((s) => {
    const p = document.querySelector(`${s} .hm-plot`);
    const c = p.querySelector('canvas.hm-image');
    const tip = p.querySelector('.hm-tip');
    return {
      start: Number(p.dataset.start), ymax: Number(p.dataset.ymax), W: c.width, H: c.height, n: 60,
      mark: p.dataset.mark ? p.dataset.mark.split(',').map(Number) : null,
      tip: tip.hidden ? null : Number(tip.dataset.time),
    };
  }, sel);
  const nextImage = async (after) => waitFor(async () => {
    const s = await state();
    return s.start > after.start ? s : null;
  }, { ms: 8_000, what: 'the next image' });
  // a pixel of the canvas (x, y) as a point of the page
  const box = async () => hm.locator('canvas.hm-overlay').boundingBox();
  const at = (b, s, x, y) => [b.x + ((x + 0.5) * b.width) / s.W, b.y + ((y + 0.5) * b.height) / s.H];
  const colX = (s, col) => Math.floor((Math.floor((col * s.W) / s.n) + Math.floor(((col + 1) * s.W) / s.n) - 1) / 2);

  await t.test('images are shaded by count; percentile lines are exact; the scale tells the max', async () => {
    await waitFor(() => requests.some((u) => u.includes('/heatmap/image')), { what: 'an image request' });
    const img = requests.filter((u) => u.includes('/heatmap/image'));
    assert.ok(img.every((u) => new URL(u).searchParams.get('coloring') === 'linear'), img[0]);
    await waitFor(() => requests.some((u) => u.includes('/heatmap/percentile')), { what: 'a percentile request' });
    const pct = requests.filter((u) => u.includes('/heatmap/percentile'));
    assert.ok(pct.every((u) => new URL(u).searchParams.get('method') === 'exact'), pct[0]);
    // the server computed them so (its reply says which method), one point per column, and
    // the lines are drawn (p50's colour on the overlay)
    const reply = await (await page.waitForResponse((r) => r.url().includes('/heatmap/percentile'))).json();
    assert.ok(Array.isArray(reply) && reply.length === 60, `${reply.length} points`);
    assert.ok(reply.every((p) => p.method === 'exact' && p.percentile.length === 3), JSON.stringify(reply[0]));
    await waitFor(() => page.evaluate((q) => {
      const o = document.querySelector(`${q} canvas.hm-overlay`);
      const d = o.getContext('2d').getImageData(0, 0, o.width, o.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 200 && d[i + 2] > 150 && d[i] < 80) n++;
      return n > 20;
    }, sel), { what: 'the p50 line drawn' });
    // the colour scale: 0 … the largest count of a cell, the image reply's max_count
    const scale = hm.locator('.hm-scale');
    const shown = await (await page.waitForResponse((r) => r.url().includes('/heatmap/image'))).json();
    assert.ok(shown.max_count > 0, `max_count ${shown.max_count}`);
    await waitFor(async () => Number(await scale.getAttribute('data-max')) > 0, { what: 'the scale\'s max' });
    await waitFor(async () => Number(await scale.getAttribute('data-max')) === shown.max_count,
      { what: `the scale's max to be the reply's ${shown.max_count}` });
    const max = Number(await scale.getAttribute('data-max'));
    assert.equal(await scale.getAttribute('data-coloring'), 'linear');
    assert.equal((await scale.locator('.hm-scale-lo').innerText()).trim(), '0');
    // the label is the count as people read it (whole events, or 3 significant digits)
    const hi = Number((await scale.locator('.hm-scale-hi').innerText()).replace(/\s/g, ''));
    assert.ok(Math.abs(hi - max) <= Math.max(0.5, max * 0.005), `label ${hi} for max ${max}`);
    assert.match(await scale.innerText(), /events? per cell/);
    const grad = await scale.locator('.hm-scale-bar').evaluate((e) => getComputedStyle(e).backgroundImage);
    assert.match(grad, /linear-gradient\(to right, rgb\(242, 242, 242\), rgb\(242, 101, 24\)\)/);
    await hm.scrollIntoViewIfNeeded();
    await ui.screenshot('hm-01-count.png', { fullPage: false });
    // rank stays available
    const before = requests.length;
    await hm.locator('select[name=coloring]').selectOption('rank');
    await waitFor(() => requests.slice(before).some((u) => u.includes('/heatmap/image') &&
      new URL(u).searchParams.get('coloring') === 'rank'), { what: 'an image shaded by rank' });
    await waitFor(async () => (await scale.getAttribute('data-coloring')) === 'rank', { what: 'the rank scale' });
    assert.match(await scale.innerText(), /fewest.*most/s);
    await hm.locator('select[name=coloring]').selectOption('linear');
    await waitFor(async () => (await scale.getAttribute('data-coloring')) === 'linear', { what: 'the count scale' });
  });

  await t.test('the tooltip follows the cell under a still pointer as the image scrolls', async () => {
    const b = await box();
    let s = await state();
    const col = 40;
    await page.mouse.move(...at(b, s, colX(s, col), Math.floor(s.H * 0.6)));
    await waitFor(async () => (await state()).tip !== null, { what: 'a tooltip' });
    s = await state();
    assert.equal(s.tip, s.start + col, 'the pointer\'s column\'s second');
    const s2 = await nextImage(s);
    // the image moved one second left under the pointer: the tooltip names the next second
    assert.equal(s2.tip, s2.start + col);
    assert.equal(s2.tip, s.tip + (s2.start - s.start));
    // and its text, once the server answered, is that second's
    const clock = await page.evaluate((sec) => new Date(sec * 1000).toTimeString().slice(0, 8), s2.tip);
    await waitFor(async () => {
      const now = await state();
      const shown = await hm.locator('.hm-tip .tip-time').innerText();
      return now.start === s2.start ? shown === clock && /events?|no data/.test(await hm.locator('.hm-tip').innerText())
        : now.tip === now.start + col; // a newer image came: still the pointer's cell
    }, { what: `the tooltip's time ${clock}` });
  });

  await t.test('a click opens the second the tooltip names; the chosen cell is outlined and followed', async () => {
    // select the workload's key, so that its cells are green and easy to find
    await hm.locator('input.legend-search').fill(NAME);
    await hm.locator(`.legend li[data-key="${NAME}"] button`).click();
    await hm.locator('input.legend-search').fill('');
    await waitFor(async () => (await page.evaluate((k) => {
      const e = [...document.querySelectorAll('.legend li[data-key]')].find((l) => l.dataset.key === k);
      return e && getComputedStyle(e.querySelector('.swatch')).backgroundColor;
    }, NAME)) === GREEN, { what: `${NAME} in its own hue` });
    // a cell of the key's in column 55 (its row: the workload's 2 ms sleeps), found on the
    // image of the key isolated (shaded by count, a small key's cells among others' are pale)
    await hm.locator('button[name=isolate]').click();
    const green = () => page.evaluate(([s, col]) => {
      const c = document.querySelector(`${s} canvas.hm-image`);
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      const x = Math.floor((Math.floor((col * c.width) / 60) + Math.floor(((col + 1) * c.width) / 60) - 1) / 2);
      let best = null, score = 0;
      for (let y = 0; y < c.height; y++) {
        const i = (y * c.width + x) * 4;
        const g = d[i + 1] - Math.max(d[i], d[i + 2]);
        if (g > score) {
          score = g;
          best = { x, y };
        }
      }
      if (!best) return null;
      // the middle of that cell (of its run of the same colour)
      const px = (y) => d.slice((y * c.width + x) * 4, (y * c.width + x) * 4 + 3).join();
      let y0 = best.y, y1 = best.y;
      while (y0 > 0 && px(y0 - 1) === px(best.y)) y0--;
      while (y1 + 1 < c.height && px(y1 + 1) === px(best.y)) y1++;
      // with the y axis this image was drawn on: a later one may rescale it
      return { x, y: Math.floor((y0 + y1) / 2), ymax: Number(document.querySelector(`${s} .hm-plot`).dataset.ymax) };
    }, [sel, 55]);
    await waitFor(() => requests.some((u) => u.includes('/heatmap/image') && u.includes('isolate=true')),
      { what: 'an isolated image request' });
    await waitFor(async () => (await hm.locator('.legend .rest-item').count()) === 0, { what: 'the isolated image' });
    const cell = await waitFor(green, { ms: 10_000, what: `a cell of ${NAME}` });
    const b = await box();
    let s = await state();
    await page.mouse.move(...at(b, s, cell.x, cell.y));
    await waitFor(async () => (await state()).tip !== null, { what: 'a tooltip' });
    // the click and the tooltip read in one task: nothing is drawn between them
    const [cx, cy] = at(b, s, cell.x, cell.y);
    const clicked = await page.evaluate(([q, x, y]) => {
      const tip = document.querySelector(`${q} .hm-tip`);
      const time = Number(tip.dataset.time);
      const plot = document.querySelector(`${q} .hm-plot`);
      const start = Number(plot.dataset.start);
      document.querySelector(`${q} canvas.hm-overlay`).dispatchEvent(
        new MouseEvent('click', { clientX: x, clientY: y, bubbles: true }));
      // the axis the click landed on (a live image may have rescaled since the cell was found)
      return { time, start, ymax: Number(plot.dataset.ymax) };
    }, [sel, cx, cy]);
    assert.equal(clicked.time, clicked.start + 55);
    const head = hm.locator('.details-head');
    await head.waitFor();
    assert.equal(Number(await head.getAttribute('data-start')), clicked.time, 'the details\' second is the tooltip\'s');
    const clock = (sec) => page.evaluate((x) => new Date(x * 1000).toTimeString().slice(0, 8), sec);
    assert.match(await head.locator('.details-time').innerText(),
      new RegExp(`^${await clock(clicked.time)} – ${await clock(clicked.time + 1)}$`));
    assert.ok(await hm.locator(`.hm-details tr[data-key="${NAME}"]`).count() === 1, 'the key is in the cell');
    // the outline is on the clicked cell...
    s = await state();
    const expect = (st) => {
      const col = clicked.time - st.start;
      return col >= 0 && col < st.n ? [Math.floor((col * st.W) / st.n), Math.floor(((col + 1) * st.W) / st.n)] : null;
    };
    assert.ok(s.mark, 'a chosen cell is marked');
    assert.deepEqual([s.mark[0], s.mark[2]], expect(s));
    // the row holds the clicked value: the clicked pixel on the axis it landed on, as y on
    // this image's axis (the live axis may rescale between finding the cell, the click and
    // now; the outline follows the value, not the pixel)
    const yNow = s.ymax === clicked.ymax ? cell.y : s.H - ((s.H - cell.y) * clicked.ymax) / s.ymax;
    assert.ok(s.mark[1] - 1 <= yNow && yNow < s.mark[3] + 1,
      `row ${JSON.stringify(s.mark)} holds y ${cell.y} (clicked on ymax ${clicked.ymax}; now ${s.ymax}: y ${yNow})`);
    // ...drawn on the overlay (the outline's colour, --hm-mark, left of the cell)
    const edge = () => page.evaluate(([q, m]) => {
      const o = document.querySelector(`${q} canvas.hm-overlay`);
      const d = o.getContext('2d').getImageData(m[0] - 1, Math.floor((m[1] + m[3]) / 2), 1, 1).data;
      return [d[0], d[1], d[2], d[3]];
    }, [sel, s.mark]);
    assert.deepEqual(await edge(), [15, 23, 42, 255]);
    await hm.scrollIntoViewIfNeeded();
    await ui.screenshot('hm-02-chosen.png', { fullPage: false });
    // ...and moves with its second as the image scrolls
    const s2 = await nextImage(s);
    assert.ok(s2.mark, 'still marked');
    assert.deepEqual([s2.mark[0], s2.mark[2]], expect(s2));
    assert.ok(s2.mark[0] < s.mark[0], `moved left: ${s.mark} → ${s2.mark}`);
    if (s2.ymax === s.ymax) assert.deepEqual([s2.mark[1], s2.mark[3]], [s.mark[1], s.mark[3]], 'same row');
    assert.equal(Number(await head.getAttribute('data-start')), clicked.time, 'the details keep their second');
    // a cell of the oldest column scrolls out at the next image: its outline goes
    await page.mouse.click(...at(await box(), s2, colX(s2, 0), cell.y));
    await waitFor(async () => (await state()).mark !== null && (await state()).mark[0] === 0, { what: 'the oldest column marked' });
    const s3 = await state();
    await waitFor(async () => {
      const now = await state();
      return now.start > s3.start && now.mark === null;
    }, { ms: 8_000, what: 'the outline gone with its second' });
    await hm.locator('button[name=isolate]').click();
    await page.mouse.move(5, 5);
  });

  await t.test('the details\' swatches take the key\'s hue once it is selected', async () => {
    // the details are of a cell of NAME's, selected: green
    await page.mouse.move(5, 5);
    const row = () => page.evaluate(([q, k]) => {
      const tr = [...document.querySelectorAll(`${q} .hm-details tr[data-key]`)].find((r) => r.dataset.key === k);
      return tr ? getComputedStyle(tr.querySelector('.swatch')).backgroundColor : null;
    }, [sel, NAME]);
    // open a fresh cell of NAME's (found on the image of the key isolated)
    let before = requests.length;
    await hm.locator('button[name=isolate]').click();
    await waitFor(() => requests.slice(before).some((u) => u.includes('/heatmap/image') && u.includes('isolate=true')),
      { what: 'an isolated image request' });
    await waitFor(async () => (await hm.locator('.legend .rest-item').count()) === 0, { what: 'the isolated image' });
    const s = await state();
    const b = await box();
    const y = await page.evaluate((q) => {
      const c = document.querySelector(`${q} canvas.hm-image`);
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let best = 0, by = null;
      const x = Math.floor((Math.floor((56 * c.width) / 60) + Math.floor((57 * c.width) / 60) - 1) / 2);
      for (let yy = 0; yy < c.height; yy++) {
        const i = (yy * c.width + x) * 4;
        const g = d[i + 1] - Math.max(d[i], d[i + 2]);
        if (g > best) {
          best = g;
          by = yy;
        }
      }
      return by;
    }, sel);
    assert.ok(y !== null, 'a green cell in column 56');
    await page.mouse.click(...at(b, s, colX(s, 56), y));
    await waitFor(async () => (await row()) === GREEN, { what: 'the selected key green in the details' });
    before = requests.length;
    await hm.locator('button[name=isolate]').click();
    await waitFor(() => requests.slice(before).some((u) => u.includes('/heatmap/image') && !u.includes('isolate=true')),
      { what: 'an image with the rest' });
    // unselected from the legend: the rest's hue
    await hm.locator(`.legend li[data-key="${NAME}"] button`).click();
    await waitFor(async () => (await row()) === ORANGE, { what: 'the key back in the rest\'s hue' });
    // selected from the details' row: its own hue again
    await page.mouse.move(5, 5);
    await hm.locator(`.hm-details tr[data-key="${NAME}"]`).click();
    await waitFor(async () => (await row()) === GREEN, { what: 'the key selected from the details, green' });
    await hm.scrollIntoViewIfNeeded();
    await ui.screenshot('hm-03-details-selected.png', { fullPage: false });
    await page.keyboard.press('Escape'); // on the page: nothing happens
    await hm.locator('.hm-details button[aria-label="close the details"]').click();
    await waitFor(async () => (await state()).mark === null, { what: 'closing the details unmarks the cell' });
  });

  await t.test('the legend: biggest first with counts, N more, search', async () => {
    await page.mouse.move(5, 5); // the legend holds its order while the pointer is over it
    await waitFor(async () => (await hm.locator('.legend li[data-key]').count()) > 13,
      { ms: 15_000, what: 'more than 13 keys' });
    await sleep(1500);
    const items = () => hm.locator('.legend li[data-key]').evaluateAll((ls) => ls.map((l) => ({
      key: l.dataset.key, count: l.dataset.count === '' ? -1 : Number(l.dataset.count), hidden: l.hidden,
      pressed: l.querySelector('button').getAttribute('aria-pressed') === 'true',
      text: l.querySelector('.key-count').textContent,
    })));
    let all = await items();
    for (let i = 1; i < all.length; i++)
      assert.ok(all[i - 1].count >= all[i].count, `by count: ${JSON.stringify(all.slice(i - 1, i + 1))}`);
    assert.ok(all[0].count > 0 && all[0].text.replace(/\s/g, '') === String(all[0].count), JSON.stringify(all[0]));
    // the top 12 and the selected key are shown; "N more" tells the others
    const shown = all.filter((k) => !k.hidden);
    assert.ok(shown.length <= 13 && shown.length >= 12, `${shown.length} keys shown`);
    all.slice(0, 12).forEach((k) => assert.ok(!k.hidden, `${k.key} shown`));
    assert.ok(all.every((k) => !k.pressed || !k.hidden), 'selected keys shown');
    const more = hm.locator('button.legend-more');
    assert.equal(await more.innerText(), `${all.length - shown.length} more`);
    await hm.scrollIntoViewIfNeeded();
    await ui.screenshot('hm-04-legend.png', { fullPage: false });
    await more.click();
    assert.equal(await more.getAttribute('aria-expanded'), 'true');
    await waitFor(async () => (await items()).every((k) => !k.hidden), { what: 'every key shown' });
    assert.equal(await more.innerText(), 'fewer');
    await more.click();
    await waitFor(async () => (await items()).filter((k) => !k.hidden).length <= 13, { what: 'the top keys again' });
    // search: the matching keys only, wherever they rank
    const search = hm.locator('input.legend-search');
    await search.fill('SNHM');
    await waitFor(async () => {
      const v = (await items()).filter((k) => !k.hidden).map((k) => k.key);
      return v.length === 1 && v[0] === NAME;
    }, { what: 'the search finds the key' });
    assert.ok(await more.isHidden());
    await search.fill('no such key at all');
    await waitFor(async () => (await items()).every((k) => k.hidden), { what: 'nothing matches' });
    assert.match(await hm.locator('.legend-note').innerText(), /no execname matches/);
    // focus stays in the search box while data flows
    await sleep(2200);
    assert.equal(await page.evaluate(() => document.activeElement.name), 'legend-filter');
    await search.press('Escape');
    assert.equal(await search.inputValue(), '');
    await waitFor(async () => (await items()).filter((k) => !k.hidden).length >= 12, { what: 'the search cleared' });
    // a focused key keeps its focus (and place) through redraws
    const btn = hm.locator(`.legend li[data-key="${NAME}"] button`);
    await btn.focus();
    await sleep(2500);
    assert.equal(await page.evaluate(() => document.activeElement.closest('li')?.dataset.key), NAME);
    // and the others still follow their counts around it
    all = await items();
    for (let i = 1; i < all.length; i++)
      assert.ok(all[i - 1].count >= all[i].count, `by count, a key focused: ${JSON.stringify(all.slice(i - 1, i + 1))}`);
  });

  await t.test('the tooltip lists keys with swatches, biggest first', async () => {
    const b = await box();
    const s = await state();
    // the densest cell of the image: the scale's darkest one (many keys there)
    let keys = [];
    for (const frac of [0.5, 0.6, 0.7, 0.4, 0.8, 0.3]) {
      await page.mouse.move(...at(b, s, colX(s, 57), Math.floor(s.H * frac)));
      try {
        await waitFor(async () => /events|no data/.test(await hm.locator('.hm-tip').innerText()), { what: 'counts' });
      } catch (e) {
        continue;
      }
      keys = await hm.locator('.hm-tip .tip-key').evaluateAll((ks) => ks.map((k) => ({
        key: k.dataset.key, n: Number(k.querySelector('.tip-key-count').textContent.replace(/\s/g, '')),
        sw: k.querySelector('.swatch').style.background || k.outerHTML,
      })));
      if (keys.length >= 2) break;
    }
    assert.ok(keys.length >= 1, 'a cell with keys');
    for (let i = 1; i < keys.length; i++) assert.ok(keys[i - 1].n >= keys[i].n, JSON.stringify(keys));
    for (const k of keys) assert.match(k.sw, /^rgb\(/, JSON.stringify(k));
    await ui.screenshot('hm-05-tip.png', { fullPage: false });
    await page.mouse.move(5, 5);
  });

  await t.test('from the keyboard, Enter chooses the cursor\'s cell and Escape lets it go', async () => {
    await hm.locator('button[name=decompose_all]').focus();
    await page.keyboard.press('Tab'); // the heatmap: the cursor on the newest column
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('ArrowLeft');
    const [s, tip] = await Promise.all([state(), hm.locator('.hm-tip').getAttribute('data-time')]);
    await page.keyboard.press('Enter');
    await hm.locator('.hm-details .details-head').waitFor();
    const chosen = Number(await hm.locator('.details-head').getAttribute('data-start'));
    assert.ok(Math.abs(chosen - Number(tip)) <= 1 && chosen >= s.start + 56, `${chosen} vs the tooltip's ${tip}`);
    const now = await state();
    const col = chosen - now.start;
    assert.deepEqual(now.mark && [now.mark[0], now.mark[2]],
      [Math.floor((col * now.W) / now.n), Math.floor(((col + 1) * now.W) / now.n)]);
    await page.keyboard.press('Escape');
    assert.ok(await hm.locator('.hm-details').isHidden());
    assert.equal((await state()).mark, null);
  });

  await t.test('the y axis has at least four round ticks, log and linear', async () => {
    const labels = () => hm.locator('.axis-y span').allInnerTexts();
    await waitFor(async () => (await labels()).length >= 4, { what: 'four log ticks' });
    for (const l of await labels()) assert.match(l, /^(0|\d+(\.\d+)? (ns|µs|ms|s|min|h))$/, l);
    // linear, auto-scaled, and narrow ranges typed in units
    for (const [lo, hi] of [['0', null], ['1ms', '3ms'], ['0', '150s'], ['0', '15min']]) {
      const before = requests.length;
      await hm.locator('select[name=yscale]').selectOption(hi === '150s' ? 'log' : 'linear');
      await hm.locator('input[name=ymin]').fill(lo);
      await hm.locator('input[name=ymin]').press('Enter');
      if (hi) {
        await hm.locator('input[name=auto]').uncheck();
        await hm.locator('input[name=ymax]').fill(hi);
        await hm.locator('input[name=ymax]').press('Enter');
      } else {
        await hm.locator('input[name=auto]').check();
      }
      const log = hi === '150s';
      const want = hi ? { '3ms': 3e6, '150s': 150e9, '15min': 900e9 }[hi] : null;
      await waitFor(async () => {
        const p = await hm.locator('.hm-plot').evaluate((e) => ({ ...e.dataset }));
        return p.yscale === (log ? 'log' : 'linear') && (want === null || Number(p.ymax) === want);
      }, { what: `an image of ${lo} to ${hi || 'auto'}` });
      const ls = await labels();
      assert.ok(ls.length >= 4 && ls.length <= 12, `${lo}–${hi}: ${ls}`);
      for (const l of ls) assert.doesNotMatch(l, /\dm \d/, `${lo}–${hi}: ${ls}`);
      if (hi === '3ms') assert.deepEqual(ls, ['1 ms', '1.5 ms', '2 ms', '2.5 ms', '3 ms']);
      if (hi === '150s') assert.ok(ls.includes('100 s'), `${ls}`);
      if (hi === '15min') assert.deepEqual(ls, ['0', '200 s', '400 s', '600 s', '800 s']);
    }
    await hm.scrollIntoViewIfNeeded();
    await ui.screenshot('hm-06-axis.png', { fullPage: false });
  });

  await t.test('420 px wide: the scale, the legend\'s head and "N more" fit', async () => {
    await page.setViewportSize({ width: 420, height: 900 });
    await sleep(1500);
    const out = await page.evaluate((q) => {
      const W = document.documentElement.clientWidth;
      return [...document.querySelectorAll(`${q} .hm-scale *, ${q} .legend-head *, ${q} .legend-more`)]
        .filter((e) => e.getClientRects().length && e.getBoundingClientRect().right > W + 1)
        .map((e) => `${e.className}: ${Math.round(e.getBoundingClientRect().right)} > ${W}`);
    }, sel);
    assert.deepEqual(out, []);
    await hm.scrollIntoViewIfNeeded();
    await ui.screenshot('hm-07-420.png', { fullPage: false });
  });

  ui.assertNoErrors();
});
