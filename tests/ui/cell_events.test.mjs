// From a heatmap cell to the flight recorder's raw events, in headless Chromium against a real
// `sonde serve` as root (docs/recorder.md, "From a heatmap cell to events"): a loop of 2 ms
// sleeps by a process of a known name, an instrumentation of its system call latency by
// execname, a syscalls recording session; a click on a cell holding its sleeps lists their raw
// events (comm, tid, clock_nanosleep, the latency) under the per-key counts, as many rows as the
// server lists; the snapshot button snapshots the session and offers its archive. Screenshots
// go to SONDE_UI_OUT, as cell-events-*.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, startWorkload, uiSession, waitFor } from './support.mjs';

const NAME = 'sncell-sleeper';
const hashParams = (url) => new URLSearchParams(new URL(url).hash.split('?')[1] || '');

test('a heatmap cell lists the recorder\'s raw events', { timeout: 180_000 }, async (t) => {
  const work = startWorkload(NAME);
  t.after(() => work.stop());
  const ui = await uiSession(t, { page: { viewport: { width: 1280, height: 1000 } } });
  const { page } = ui;
  const created = await api(ui, 'POST', '/ca/instrumentations', {
    module: 'syscall', stat: 'syscalls', predicate: { eq: ['execname', NAME] },
    decomposition: ['execname', 'latency'],
  });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const id = created.json.id;
  const rec = await api(ui, 'POST', '/ca/recorder/sessions',
    { name: 'uirec', events: ['syscalls'], 'size-per-cpu': '64M' });
  assert.equal(rec.status, 201, JSON.stringify(rec.json));

  await ui.goto('/');
  const sel = `.panel[data-id="${id}"]`;
  const hm = page.locator(sel);
  await hm.locator('.hm-plot[data-start]').waitFor({ timeout: 15_000 });
  await page.waitForTimeout(4_000); // seconds of sleeps recorded
  // and the columns the search reads (from the third newest back) after the session's start:
  // its rings hold every event from the second after the one it started in
  const started = Number(rec.json.started);
  await waitFor(() => Date.now() / 1000 >= started + 7, { ms: 15_000, what: 'seconds recorded' });
  // paused, so that the columns stay where the test finds its cell (trace.test.mjs)
  await page.click('button.pause');
  await waitFor(() => hashParams(page.url()).has('at'), { what: 'the paused time in the URL' });
  const at = Number(hashParams(page.url()).get('at'));
  await waitFor(async () => {
    const p = hm.locator('.hm-plot');
    return Number(await p.getAttribute('data-start')) + Number(await p.getAttribute('data-duration')) === at;
  }, { what: 'the heatmap shows the interval ending at the pause' });

  const s = await page.evaluate((q) => {
    const p = document.querySelector(`${q} .hm-plot`);
    const c = p.querySelector('canvas.hm-image');
    return { ymax: Number(p.dataset.ymax), yscale: p.dataset.yscale, start: p.dataset.start,
      duration: p.dataset.duration, W: c.width, H: c.height,
      n: Math.round(Number(p.dataset.duration) / Number(p.dataset.granularity)) };
  }, sel);
  const xOf = (col) => Math.floor((Math.floor((col * s.W) / s.n) + Math.floor(((col + 1) * s.W) / s.n) - 1) / 2);
  const b = await hm.locator('canvas.hm-overlay').boundingBox();
  const clickCell = async (x, y) => {
    // the reply to this click: the last details with events answered after it (a hover's asks
    // without events; an earlier click's may be answered after this one's request went out)
    let last = null;
    const seen = (r) => {
      const u = new URL(r.url());
      if (u.pathname.endsWith('/heatmap/details') && u.searchParams.get('events') === 'true')
        last = r;
    };
    page.on('response', seen);
    const reply = page.waitForResponse((r) => r.url().includes('/heatmap/details') &&
      r.url().includes('events=true'), { timeout: 10_000 })
      .then(async () => {
        await page.waitForTimeout(300); // any later reply of the same click
        page.off('response', seen);
        return last;
      });
    await page.mouse.click(b.x + ((x + 0.5) * b.width) / s.W, b.y + ((y + 0.5) * b.height) / s.H);
    return reply;
  };
  // the panel's own parameters of details, from a first click's request: the search below asks
  // the same cells the clicks do
  const probe = new URL((await clickCell(xOf(s.n - 3), s.H >> 1)).url());
  const cell = async (x, y, events = false) => {
    const u = new URL(probe);
    u.searchParams.set('x', x);
    u.searchParams.set('y', y);
    u.searchParams.set('events', events);
    return (await api(ui, 'GET', u.pathname.replace(/^.*\/ca\//, '/ca/') + u.search)).json;
  };
  // the rows whose bands hold the sleeps (2 ms and a little more): the first from the top
  // whose band starts at or below 2.05 ms (the server says each row's band, decreasing down)
  const first = async (pred) => {
    let lo = 0, hi = s.H;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (pred(await cell(0, mid))) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
  const top = await first((d) => d.bucket_ymin <= 2.3e6);
  const bottom = await first((d) => d.bucket_ymax <= 2.0e6);
  // a cell there, of a recent column (not the newest two: the last second may still be
  // coming), whose details list raw events (those with events asked only once it counts some)
  let found = null;
  const seen = [];
  for (let col = s.n - 3; col > s.n - 8 && !found; col--) {
    for (let y = top; y <= Math.min(bottom, s.H - 1) && !found; y++) {
      if ((await cell(xOf(col), y)).total === 0) continue;
      const d = await cell(xOf(col), y, true);
      seen.push([col, y, d.total, d.recording, d.events_total]);
      if ((d.events || []).length > 0) found = { x: xOf(col), y, d };
    }
  }
  assert.ok(found, `no cell with raw events in ${JSON.stringify({ s, top, bottom, seen, probe })}`);
  const { x, y, d } = found;
  assert.ok(['covered', 'partial'].includes(d.recording.state), JSON.stringify(d.recording));
  assert.equal(d.recording.session, 'uirec');
  assert.ok(d.events.every((e) => e.comm === NAME), JSON.stringify(d.events));

  // the click on it: the reply it gets, which the table must show
  const reply = clickCell(x, y);
  const rows = hm.locator('.hm-details .raw-events tbody tr');
  try {
    await rows.first().waitFor({ timeout: 10_000 });
  } catch (e) {
    await ui.screenshot('cell-events-failed');
    throw new Error(`no raw events at (${x}, ${y}): ${await hm.locator('.hm-details').textContent()}`);
  }
  const got = await (await reply).json();
  assert.ok(['covered', 'partial'].includes(got.recording.state), JSON.stringify(got.recording));
  assert.equal(got.events.length, Math.min(20, got.events_total));
  const text = await rows.allTextContents();
  assert.equal(text.length, got.events.length, text.join(' | '));
  got.events.forEach((e, i) => assert.ok(text[i].includes(String(e.tid)) && text[i].includes(e.syscall), text[i]));
  assert.ok(text.every((r) => r.includes(NAME)), text.join(' | '));
  const head = await hm.locator('.hm-details .raw-events h4').textContent();
  assert.ok(head.includes('recording uirec'), head);
  // the per-key counts come first, the raw events under them
  const order = await page.evaluate((q) => {
    const dd = document.querySelector(`${q} .hm-details`);
    const kt = dd.querySelector('table.details-table'), re = dd.querySelector('.raw-events');
    return kt && re ? kt.compareDocumentPosition(re) & Node.DOCUMENT_POSITION_FOLLOWING : 0;
  }, sel);
  assert.ok(order, 'the raw events follow the per-key counts');
  await ui.screenshot('cell-events');

  // the snapshot button: a snapshot of the session, its archive offered
  await hm.locator('.hm-details .raw-events-snap button').click();
  const link = hm.locator('.hm-details .raw-events-archive');
  await link.waitFor({ timeout: 15_000 });
  const name = await link.textContent();
  assert.match(name, /^uirec-\d{8}T\d{6}Z-\d+\.tar$/);
  const snaps = await api(ui, 'GET', '/ca/recorder/snapshots');
  assert.ok(snaps.json.includes(name.replace(/\.tar$/, '')), JSON.stringify(snaps.json));
  assert.equal((await api(ui, 'DELETE', '/ca/recorder/sessions/uirec')).status, 204);
  ui.assertNoErrors();
});
