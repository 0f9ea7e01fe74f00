// The heatmap view of an instrumentation with a numeric decomposition: the server's image
// (time × value × count, a hue per key), redrawn each second without flicker (the new PNG is
// decoded off-screen and then painted over the old one), with:
//  - axes in the field's units, and p50/p90/p99 lines from the percentile endpoint;
//  - a tooltip on hover (time, value range and count of the cell, from the details
//    endpoint) and the cell's per-key counts on click;
//  - a legend of the keys present, in the image's hues (the reply's `layers`): clicking a key
//    highlights it (selected), and isolate / exclude / decompose-all toggles;
//  - ymin / ymax (in units: "10ms") or auto, and a linear or log y axis.

import { get, getBackground } from './api.js';
import { fieldType, isNumeric } from './catalog.js';
import { fill, h } from './dom.js';
import {
  fmtClock, fmtCount, fmtInput, fmtRange, fmtValue, hueColor, logTicks, niceTicks, parseValue,
} from './units.js';

const HEIGHT = 280;
const MAX_SELECTED = 63; // the server draws at most this many keys' layers
const PCTL = [
  [0.5, 'p50', '#1d4ed8'],
  [0.9, 'p90', '#be185d'],
  [0.99, 'p99', '#111827'],
];
const defaultHue = (i) => (21 + 91 * i) % 360;
const keyText = (k) => (k === '' ? '(empty)' : k);

// The column drawn under pixel x when n columns share w pixels: column i covers
// [floor(i·w/n), floor((i+1)·w/n)), as the server draws and answers details.
export function columnAt(x, w, n) {
  let i = Math.min(n - 1, Math.max(0, Math.floor((x * n) / w)));
  while (i + 1 < n && Math.floor(((i + 1) * w) / n) <= x) i++;
  while (i > 0 && Math.floor((i * w) / n) > x) i--;
  return i;
}

export class HeatmapView {
  constructor(panel) {
    const { cat, inst } = panel;
    this.panel = panel;
    this.numField = inst.decomposition.find((f) => isNumeric(cat, f));
    this.keyField = inst.decomposition.find((f) => !isNumeric(cat, f)) || null;
    this.type = fieldType(cat, this.numField);
    this.selected = [];
    this.mode = null; // 'isolate' | 'exclude' | 'decompose_all' | null
    // latencies span decades: a log axis shows them all; other quantities start linear
    this.yscale = this.type && this.type.unit === 'seconds' ? 'log' : 'linear';
    this.auto = true;
    this.ymin = 0;
    this.ymax = null;
    this.pctl = true;
    this.shown = null; // {img, params} of what is on screen
    this.items = new Map(); // legend: key → its <li>
    this.build();
  }

  build() {
    const ctl = (name, label, title) => {
      const b = h('button.toggle', { type: 'button', name, title, 'aria-pressed': 'false' }, label);
      b.onclick = () => {
        this.mode = this.mode === name ? null : name;
        this.changed();
      };
      return b;
    };
    this.toggles = this.keyField
      ? [ctl('isolate', 'Isolate', 'only the selected keys'),
        ctl('exclude', 'Exclude', 'everything but the selected keys'),
        ctl('decompose_all', 'Decompose all', 'a hue for every key')]
      : [];
    this.yminIn = h('input.num', { name: 'ymin', type: 'text', value: '0', size: 7,
      'aria-label': 'y minimum' });
    this.ymaxIn = h('input.num', { name: 'ymax', type: 'text', size: 7, placeholder: 'auto',
      'aria-label': 'y maximum', disabled: true });
    this.autoIn = h('input', { name: 'auto', type: 'checkbox', checked: true });
    this.scaleIn = h('select', { name: 'yscale', 'aria-label': 'y scale' },
      h('option', { value: 'linear' }, 'linear'), h('option', { value: 'log' }, 'log'));
    this.scaleIn.value = this.yscale;
    this.pctlIn = h('input', { name: 'pctl', type: 'checkbox', checked: true });
    const onRange = () => {
      const lo = parseValue(this.yminIn.value || '0', this.type);
      const hi = !this.auto && this.ymaxIn.value ? parseValue(this.ymaxIn.value, this.type) : null;
      const loBad = !Number.isFinite(lo) || lo < 0;
      const hiBad = hi !== null && !(hi > lo);
      this.yminIn.classList.toggle('bad', loBad);
      this.ymaxIn.classList.toggle('bad', hiBad);
      if (loBad || hiBad) return;
      this.ymin = lo;
      this.ymax = hi;
      this.changed();
    };
    this.yminIn.addEventListener('change', onRange);
    this.ymaxIn.addEventListener('change', onRange);
    this.autoIn.addEventListener('change', () => {
      this.auto = this.autoIn.checked;
      this.ymaxIn.disabled = this.auto;
      this.ymaxIn.classList.remove('bad');
      if (!this.auto && !this.ymaxIn.value && this.shown && this.shown.img.ymax > 0)
        this.ymaxIn.value = fmtInput(this.shown.img.ymax, this.type);
      onRange();
    });
    this.scaleIn.addEventListener('change', () => {
      this.yscale = this.scaleIn.value;
      this.changed();
    });
    this.pctlIn.addEventListener('change', () => {
      this.pctl = this.pctlIn.checked;
      this.changed();
    });

    this.image = h('canvas.hm-image', { width: 600, height: HEIGHT, role: 'img',
      'aria-label': `heatmap of ${this.numField} over time` });
    this.overlay = h('canvas.hm-overlay', { width: 600, height: HEIGHT, tabIndex: 0,
      'aria-label': 'heatmap cells: arrow keys move between cells, Enter shows a cell\'s details' });
    this.cursor = null; // the keyboard's cell: {col, row} (row 0 at the top)
    this.tip = h('div.hm-tip', { role: 'tooltip', hidden: true });
    this.plot = h('div.hm-plot', this.image, this.overlay, this.tip);
    this.yaxis = h('div.axis-y');
    this.xaxis = h('div.axis-x');
    this.legendTitle = h('li.legend-title', this.keyField ? `${this.keyField}:` : '');
    this.legendNote = h('li.muted', { hidden: true });
    this.legend = h('ul.legend', { 'aria-label': `${this.keyField || 'keys'}: click to highlight` },
      this.legendTitle, this.legendNote);
    this.details = h('div.hm-details', { hidden: true, 'aria-live': 'polite' });
    this.el = h('div.heatmap',
      h('div.controls',
        h('label', 'y from ', this.yminIn),
        h('label', ' to ', this.ymaxIn),
        h('label.check', this.autoIn, ' auto'),
        h('label', ' scale ', this.scaleIn),
        h('label.check', this.pctlIn, ' ',
          PCTL.map(([, n, c]) => h('span.pctl-key', { style: { borderColor: c } }, n))),
        this.toggles.length ? h('span.seg-group', this.toggles) : null),
      h('div.hm-frame', this.yaxis, this.plot, h('div'), this.xaxis),
      this.keyField ? this.legend : null,
      this.details);

    this.overlay.addEventListener('mousemove', (e) => {
      const { x, y } = this.pixel(e);
      this.hoverAt(x, y);
    });
    this.overlay.addEventListener('mouseleave', () => this.hideTip());
    this.overlay.addEventListener('click', (e) => {
      const { x, y } = this.pixel(e);
      this.clickAt(x, y);
    });
    this.overlay.addEventListener('keydown', (e) => this.key(e));
    // the cursor is the keyboard's: focus by Tab shows it, focus by a click does not
    this.overlay.addEventListener('focus', () => {
      if (this.overlay.matches(':focus-visible')) {
        this.keyboard = true;
        this.moveCursor(0, 0);
      }
    });
    this.overlay.addEventListener('blur', () => {
      this.keyboard = false;
      this.hideTip();
      this.drawCursor();
    });
  }

  hideTip() {
    this.tip.hidden = true;
    this.tipKey = null;
    clearTimeout(this.hoverTimer);
    if (this.hoverAbort) this.hoverAbort.abort();
  }

  changed() {
    for (const b of this.toggles) b.setAttribute('aria-pressed', String(this.mode === b.name));
    if (this.shown) this.drawLegend(this.shown.img); // the pressed state at once
    this.panel.kick();
  }

  width() {
    const w = this.plot.clientWidth || 600;
    return Math.max(100, Math.min(1000, Math.floor(w)));
  }

  drawParams() {
    const p = { width: this.width(), height: HEIGHT, ymin: this.ymin };
    if (!this.auto && this.ymax !== null) p.ymax = this.ymax;
    if (this.yscale === 'log') p.yscale = 'log';
    if (this.mode) p[this.mode] = true;
    if (this.selected.length && this.mode !== 'decompose_all') p.selected = this.selected.join(',');
    return p;
  }

  // The interval on screen.
  get interval() {
    return this.shown
      ? { start_time: this.shown.img.start_time, duration: this.shown.img.duration }
      : null;
  }

  async refresh(iv, extra, signal) {
    const path = `${this.panel.path}/value/heatmap`;
    const params = { ...this.drawParams(), ...iv, ...extra };
    const img = await getBackground(`${path}/image`, params, signal);
    const pic = new Image();
    pic.src = `data:image/png;base64,${img.image}`;
    await pic.decode();
    let pct = null;
    if (this.pctl && img.ymax > img.ymin) {
      const g = this.panel.inst.granularity;
      pct = await getBackground(`${path}/percentile`, {
        start_time: img.start_time, duration: g, ndatapoints: Math.round(img.duration / g),
        ymin: img.ymin, ymax: img.ymax, yscale: img.yscale, timeout: 0,
        percentile: PCTL.map((p) => p[0]).join(','),
      }, signal);
    }
    if (signal && signal.aborted) throw new DOMException('aborted', 'AbortError');
    this.draw(img, pic, pct, params);
    return img;
  }

  // Vertical position (px from the top) of value v on the image's axis.
  yOf(v, img) {
    const H = img.height;
    if (!(img.ymax > img.ymin)) return H;
    if (img.yscale === 'log') {
      const lo = Math.max(img.ymin, 1);
      if (v <= lo || !(img.ymax > lo)) return H;
      return H - (Math.log(v / lo) / Math.log(img.ymax / lo)) * H;
    }
    return H - ((v - img.ymin) / (img.ymax - img.ymin)) * H;
  }

  draw(img, pic, pct, params) {
    const W = img.width, H = img.height;
    for (const c of [this.image, this.overlay]) {
      if (c.width !== W) c.width = W;
      if (c.height !== H) c.height = H;
    }
    this.image.getContext('2d').drawImage(pic, 0, 0);
    this.shown = { img, params };
    this.plot.dataset.start = img.start_time;
    this.plot.dataset.ymax = img.ymax;

    const o = this.overlay.getContext('2d');
    o.clearRect(0, 0, W, H);
    const n = Math.max(1, Math.round(img.duration / this.panel.inst.granularity));
    if (pct && img.ymax > img.ymin) {
      const pts = Array.isArray(pct) ? pct : [pct];
      PCTL.forEach(([, , colour], k) => {
        o.strokeStyle = colour;
        o.lineWidth = 1.5;
        o.setLineDash(k === 2 ? [4, 3] : []);
        o.beginPath();
        let pen = false;
        pts.forEach((pt, i) => {
          const v = Array.isArray(pt.percentile) ? pt.percentile[k] : pt.percentile;
          if (!(v > img.ymin)) {
            pen = false; // no data in this column
            return;
          }
          const x = (Math.floor((i * W) / n) + Math.floor(((i + 1) * W) / n)) / 2;
          const y = Math.max(0, this.yOf(v, img));
          if (pen) o.lineTo(x, y);
          else o.moveTo(x, y);
          pen = true;
        });
        o.stroke();
      });
    }
    this.axes(img);
    this.drawLegend(img);
    this.cursorBox = null; // the overlay was redrawn whole
    this.drawCursor();
  }

  axes(img) {
    const W = img.width;
    let ticks = [];
    if (img.ymax > img.ymin)
      ticks = img.yscale === 'log' ? logTicks(Math.max(img.ymin, 1), img.ymax) : niceTicks(img.ymin, img.ymax, 5);
    fill(this.yaxis, ticks.map((v) =>
      h('span', { style: { top: `${Math.round(this.yOf(v, img))}px` } }, fmtValue(v, this.type))));
    const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
    const step = steps.find((s) => img.duration / s <= Math.max(2, W / 90)) || 3600;
    const labels = [];
    for (let t = Math.ceil(img.start_time / step) * step; t <= img.end_time; t += step) {
      const x = Math.round(((t - img.start_time) / img.duration) * W);
      if (x >= 25 && x <= W - 25) labels.push(h('span', { style: { left: `${x}px` } }, fmtClock(t)));
    }
    fill(this.xaxis, labels);
  }

  // hue of each key's own layer, and of "the rest" (null when the rest is not drawn)
  layersOf(img) {
    const own = new Map();
    let rest = this.mode === 'isolate' ? null : defaultHue(0);
    if (Array.isArray(img.layers)) {
      rest = null;
      for (const l of img.layers) {
        if (l.key === undefined || l.key === null) rest = l.hue;
        else own.set(l.key, l.hue);
      }
    } else {
      const keys = this.mode === 'decompose_all' ? img.present.slice(0, MAX_SELECTED) : this.selected;
      keys.forEach((k, i) => own.set(k, defaultHue(i + 1)));
    }
    return { own, rest };
  }

  toggleKey(k) {
    const i = this.selected.indexOf(k);
    if (i >= 0) this.selected.splice(i, 1);
    else if (this.selected.length < MAX_SELECTED) this.selected.push(k);
    if (this.mode === 'decompose_all') this.mode = null;
    this.changed();
  }

  // The legend, updated in place (a focused key keeps its focus while data flows): the
  // drawn keys first in layer order, then the others in order.
  drawLegend(img) {
    if (!this.keyField) return;
    const { own, rest } = this.layersOf(img);
    const present = img.present || [];
    const has = new Set(present);
    const excluded = this.mode === 'exclude' ? new Set(this.selected) : new Set();
    const keys = [...new Set([...own.keys(), ...this.selected, ...present])];
    const want = new Set(keys);
    for (const [k, li] of this.items)
      if (!want.has(k)) {
        li.remove();
        this.items.delete(k);
      }
    let prev = this.legendTitle;
    for (const k of keys) {
      let li = this.items.get(k);
      if (!li) {
        const btn = h('button.key', { type: 'button' }, h('span.swatch'), h('span.key-name', keyText(k)),
          h('span.muted.key-note'));
        btn.onclick = () => this.toggleKey(k);
        li = h('li', { dataset: { key: k } }, btn);
        this.items.set(k, li);
      }
      const btn = li.firstChild;
      const comma = k.includes(',');
      const pressed = this.selected.includes(k) && this.mode !== 'decompose_all';
      const hue = own.has(k) ? own.get(k) : excluded.has(k) ? null : rest;
      btn.setAttribute('aria-pressed', String(pressed));
      btn.disabled = comma;
      btn.title = comma ? 'a key with a comma cannot be selected (the API splits keys at commas)'
        : excluded.has(k) ? 'excluded: click to draw it again'
          : pressed ? 'click to stop highlighting' : 'click to highlight';
      const sw = btn.querySelector('.swatch');
      sw.style.background = hue === null ? 'transparent' : hueColor(hue);
      sw.classList.toggle('rest', !own.has(k));
      li.classList.toggle('excluded', excluded.has(k));
      btn.querySelector('.key-note').textContent = has.has(k) ? '' : ' (no data)';
      if (prev.nextSibling !== li) prev.after(li);
      prev = li;
    }
    const restItem = this.legend.querySelector('.rest-item');
    if (rest !== null && own.size > 0) {
      const ri = restItem || h('li.rest-item', h('span.swatch'), h('span.muted', 'everything else'));
      ri.querySelector('.swatch').style.background = hueColor(rest);
      if (prev.nextSibling !== ri) prev.after(ri);
      prev = ri;
    } else if (restItem) {
      restItem.remove();
    }
    this.legendNote.hidden = present.length > 0;
    this.legendNote.textContent = 'no data in this interval';
    if (prev.nextSibling !== this.legendNote) prev.after(this.legendNote);
  }

  // The keyboard's cell cursor: arrows move it by a column or a row, Home/End to the first
  // or newest column, Enter or Space opens its details; the tooltip follows it.
  geometry() {
    const { img } = this.shown;
    const n = Math.max(1, Math.round(img.duration / this.panel.inst.granularity));
    return { img, n, nb: img.nbuckets || 100, W: img.width, H: img.height };
  }

  cell(col, row) {
    const { n, nb, W, H } = this.geometry();
    const x0 = Math.floor((col * W) / n), x1 = Math.floor(((col + 1) * W) / n);
    const y0 = Math.floor((row * H) / nb), y1 = Math.floor(((row + 1) * H) / nb);
    return { x0, x1, y0, y1, x: Math.floor((x0 + x1 - 1) / 2), y: Math.floor((y0 + y1 - 1) / 2) };
  }

  moveCursor(dc, dr, to) {
    if (!this.shown) return;
    const { n, nb } = this.geometry();
    const c = this.cursor || { col: n - 1, row: Math.floor(nb / 2) };
    let col = to !== undefined ? to : c.col + dc;
    col = Math.max(0, Math.min(n - 1, col));
    const row = Math.max(0, Math.min(nb - 1, c.row + dr));
    this.cursor = { col, row };
    this.drawCursor();
    const { x, y } = this.cell(col, row);
    this.hoverAt(x, y);
  }

  drawCursor() {
    if (!this.shown || !this.cursor) return;
    const o = this.overlay.getContext('2d');
    if (this.cursorBox) { // put back what the last box covered
      const b = this.cursorBox;
      o.putImageData(b.saved, b.x, b.y);
      this.cursorBox = null;
    }
    if (document.activeElement !== this.overlay || !this.keyboard) return;
    const { x0, x1, y0, y1 } = this.cell(this.cursor.col, this.cursor.row);
    const bx = Math.max(0, x0 - 2), by = Math.max(0, y0 - 2);
    const bw = Math.min(this.overlay.width - bx, x1 - x0 + 4), bh = Math.min(this.overlay.height - by, y1 - y0 + 4);
    this.cursorBox = { x: bx, y: by, saved: o.getImageData(bx, by, bw, bh) };
    o.save();
    o.setLineDash([]);
    o.lineWidth = 2;
    o.strokeStyle = '#0f172a';
    o.strokeRect(x0 - 1, y0 - 1, x1 - x0 + 2, y1 - y0 + 2);
    o.restore();
  }

  key(e) {
    if (!this.shown) return;
    this.keyboard = true;
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (moves[e.key]) {
      e.preventDefault();
      this.moveCursor(...moves[e.key]);
    } else if (e.key === 'Home' || e.key === 'End') {
      e.preventDefault();
      this.moveCursor(0, 0, e.key === 'Home' ? 0 : Infinity);
    } else if ((e.key === 'Enter' || e.key === ' ') && this.cursor) {
      e.preventDefault();
      const { x, y } = this.cell(this.cursor.col, this.cursor.row);
      this.clickAt(x, y);
    } else if (e.key === 'Escape') {
      this.hideTip();
      this.details.hidden = true;
    }
  }

  pixel(e) {
    const r = this.overlay.getBoundingClientRect();
    const x = Math.floor(((e.clientX - r.left) * this.overlay.width) / r.width);
    const y = Math.floor(((e.clientY - r.top) * this.overlay.height) / r.height);
    return { x: Math.max(0, Math.min(this.overlay.width - 1, x)),
      y: Math.max(0, Math.min(this.overlay.height - 1, y)) };
  }

  // What a pixel of the shown image holds; null when the image has no range to ask about.
  detailsOf(x, y, signal) {
    const { img, params } = this.shown;
    if (!(img.ymax > img.ymin)) return Promise.resolve(null);
    return get(`${this.panel.path}/value/heatmap/details`, {
      ...params, start_time: img.start_time, duration: img.duration, ymin: img.ymin,
      ymax: img.ymax, timeout: 0, x, y,
    }, signal);
  }

  hoverAt(x, y) {
    if (!this.shown) return;
    const { img } = this.shown;
    const g = this.panel.inst.granularity;
    const n = Math.max(1, Math.round(img.duration / g));
    const t = img.start_time + columnAt(x, img.width, n) * g;
    const r = this.overlay.getBoundingClientRect();
    const cx = (x * r.width) / this.overlay.width, cy = (y * r.height) / this.overlay.height;
    this.tip.hidden = false;
    this.tip.style.left = `${Math.max(0, Math.min(cx + 14, r.width - 180))}px`;
    this.tip.style.top = `${Math.max(0, cy - 10)}px`;
    const key = `${x},${y},${img.start_time}`;
    if (this.tipKey !== key) {
      this.tipKey = key;
      fill(this.tip, h('div.tip-time', fmtClock(t)), h('div.muted', '…'));
    }
    clearTimeout(this.hoverTimer);
    this.hoverTimer = setTimeout(async () => {
      if (this.hoverAbort) this.hoverAbort.abort();
      this.hoverAbort = new AbortController();
      try {
        const d = await this.detailsOf(x, y, this.hoverAbort.signal);
        if (this.tipKey !== key) return;
        if (!d) {
          fill(this.tip, h('div.tip-time', fmtClock(t)), h('div.muted', 'no data'));
          return;
        }
        const top = Object.entries(d.present || {}).sort((a, b) => b[1] - a[1]).slice(0, 3);
        fill(this.tip,
          h('div.tip-time', fmtClock(d.bucket_time)),
          h('div.tip-range', fmtRange(d.bucket_ymin, d.bucket_ymax, this.type)),
          h('div.tip-count', `${fmtCount(d.total)} ${d.total === 1 ? 'event' : 'events'}`),
          top.map(([k, c]) => h('div.tip-key', `${keyText(k)}: ${fmtCount(c)}`)),
          d.total ? h('div.muted', 'click for details') : null);
      } catch (err) {
        if (err.name !== 'AbortError' && this.tipKey === key) fill(this.tip, h('div.error', err.message));
      }
    }, 60);
  }

  async clickAt(x, y) {
    if (!this.shown) return;
    if (this.clickAbort) this.clickAbort.abort();
    this.clickAbort = new AbortController();
    try {
      const d = await this.detailsOf(x, y, this.clickAbort.signal);
      if (d) this.showDetails(d);
    } catch (err) {
      if (err.name === 'AbortError') return;
      fill(this.details, h('p.error', err.message));
      this.details.hidden = false;
    }
  }

  showDetails(d) {
    const rows = Object.entries(d.present || {}).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    const { own, rest } = this.layersOf(this.shown.img);
    const close = h('button.small', { type: 'button', title: 'close', 'aria-label': 'close the details',
      onclick: () => { this.details.hidden = true; } }, '×');
    fill(this.details,
      h('div.details-head',
        h('strong', `${fmtClock(d.bucket_time)} – ${fmtClock(d.bucket_time + this.panel.inst.granularity)}`),
        h('span', ` · ${this.numField} ${fmtRange(d.bucket_ymin, d.bucket_ymax, this.type)}`),
        h('span.details-total', ` · ${fmtCount(d.total)} ${d.total === 1 ? 'event' : 'events'}`),
        close),
      this.keyField && rows.length
        ? h('table.details-table',
          h('thead', h('tr', h('th', this.keyField), h('th.n', 'count'), h('th.n', 'share'))),
          h('tbody', rows.map(([k, c]) => {
            const hue = own.has(k) ? own.get(k) : rest;
            const tr = h('tr', { dataset: { key: k }, title: 'click to highlight', tabIndex: 0 },
              h('td', h('span.swatch', { style: { background: hue === null ? 'transparent' : hueColor(hue) } }), keyText(k)),
              h('td.n', fmtCount(c)),
              h('td.n', d.total ? `${((100 * c) / d.total).toFixed(1)} %` : ''));
            const pick = () => {
              if (!this.selected.includes(k) && !k.includes(',')) this.toggleKey(k);
            };
            tr.onclick = pick;
            tr.onkeydown = (ev) => {
              if (ev.key === 'Enter' || ev.key === ' ') {
                ev.preventDefault();
                pick();
              }
            };
            return tr;
          })))
        : h('p.muted', d.total ? '' : 'no events in this cell'));
    this.details.hidden = false;
  }
}
