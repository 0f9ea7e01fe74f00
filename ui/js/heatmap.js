// The heatmap view of an instrumentation with a numeric decomposition: the server's image
// (time × value × count, a hue per key), redrawn each second without flicker (the new PNG is
// decoded off-screen and then painted over the old one), with:
//  - axes in the field's units, and exact p50/p90/p99 lines from the percentile endpoint;
//  - a tooltip on hover (time, value range and count of the cell, from the details
//    endpoint), recomputed for the pointer's cell whenever a new image comes in, and the
//    cell's per-key counts on click; the chosen cell is outlined and the outline moves with
//    its second as the image scrolls;
//  - colouring by count (the default) or by rank, and a colour scale saying what a shade
//    means in events;
//  - a legend of the keys present, biggest first with their counts, a search box and
//    "N more"; clicking a key highlights it (selected), and isolate / exclude /
//    decompose-all toggles;
//  - ymin / ymax (in units: "10ms") or auto, and a linear or log y axis;
//  - drag across the image (mouse down, move, up) to zoom every panel into the columns
//    dragged over: a custom interval (timectl.js), a band drawn over them while dragging.
//
// A column covers the reply's "granularity" seconds (the server merges whole stored records
// for long intervals); a server without a store leaves it out and a column is then the
// instrumentation's granularity.

import { base, call, download, get, getBackground, session } from './api.js';
import { fieldType, isNumeric } from './catalog.js';
import { fill, h } from './dom.js';
import {
  durationTicks, fmtCount, fmtInput, fmtRange, fmtTicks, fmtValue, fmtWhen, hueColor, logTicks, niceTicks,
  parseValue, timeTicks,
} from './units.js';
import { time } from './timectl.js';
import { TriggerBox } from './triggers.js';

const HEIGHT = 280;
const MAX_SELECTED = 63; // the server draws at most this many keys' layers
const LEGEND_TOP = 12; // keys the legend shows before "N more"
const TIP_KEYS = 5; // keys a tooltip lists
const PCTL = [
  [0.5, 'p50', '#1d4ed8'],
  [0.9, 'p90', '#be185d'],
  [0.99, 'p99', '#111827'],
];
const defaultHue = (i) => (21 + 91 * i) % 360;
const keyText = (k) => (k === '' ? '(empty)' : k);
const byCount = (a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
const DRAG_MIN = 4; // pixels the pointer moves, button down, before it is a drag, not a click

// The column drawn under pixel x when n columns share w pixels: column i covers
// [floor(i·w/n), floor((i+1)·w/n)), as the server draws and answers details.
export function columnAt(x, w, n) {
  let i = Math.min(n - 1, Math.max(0, Math.floor((x * n) / w)));
  while (i + 1 < n && Math.floor(((i + 1) * w) / n) <= x) i++;
  while (i > 0 && Math.floor((i * w) / n) > x) i--;
  return i;
}

// The row (0 at the top) drawn under pixel y when nb rows share h pixels, as the server maps
// details' y (src/api/heatmap.c).
export function rowAt(y, hpx, nb) {
  return Math.max(0, Math.min(nb - 1, Math.ceil(((y + 1) * nb) / hpx) - 1));
}

// Edge j (0 at ymin) of nb rows over [ymin, ymax], linear or log, as src/render/raster.c.
export function rowEdge(ymin, ymax, nb, j, log) {
  if (!log) return ymin + ((ymax - ymin) * j) / nb;
  const lo = ymin < 1 ? 1 : ymin;
  if (j === 0) return ymin < 1 ? ymin : lo;
  return lo * Math.pow(ymax / lo, j / nb);
}

// A CSS custom property of el (the theme's), or dflt.
function cssVar(el, name, dflt) {
  const v = getComputedStyle(el).getPropertyValue(name).trim();
  return v || dflt;
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
    // shade by count: a key of 13 events among 30 000 stays pale (rank would paint it dark)
    this.coloring = 'linear';
    this.auto = true;
    this.ymin = 0;
    this.ymax = null;
    this.pctl = true;
    this.shown = null; // {img, params, pct, peak} of what is on screen
    this.frame = 0; // images drawn so far
    this.pointer = null; // the mouse over the image, in image pixels
    this.chosen = null; // the clicked cell: {t, row, ymin, ymax, nb, log, lo, hi}
    this.items = new Map(); // legend: key → its <li>
    this.counts = null; // legend: key → events in the interval shown
    this.expanded = false; // legend: every key, not only the top ones
    this.filter = '';
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
    this.colorIn = h('select', { name: 'coloring', 'aria-label': 'shade cells by',
      title: 'count: a cell\'s shade is its count over the image\'s largest; rank: its place among every cell with events' },
    h('option', { value: 'linear' }, 'count'), h('option', { value: 'rank' }, 'rank'));
    this.colorIn.value = this.coloring;
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
    this.colorIn.addEventListener('change', () => {
      this.coloring = this.colorIn.value;
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
    this.yaxis = h('div.axis-y', { 'aria-hidden': 'true' });
    this.xaxis = h('div.axis-x', { 'aria-hidden': 'true' });

    // the colour scale: what a shade means in events
    this.scaleBar = h('span.hm-scale-bar');
    this.scaleLo = h('span.hm-scale-lo');
    this.scaleHi = h('span.hm-scale-hi');
    this.scaleText = h('span.hm-scale-text.muted');
    this.scale = h('div.hm-scale', { hidden: true },
      h('span.hm-scale-ramp', this.scaleLo, this.scaleBar, this.scaleHi), this.scaleText);

    // the legend: biggest keys first, a search box, "N more"
    this.legendTitle = h('span.legend-title', this.keyField ? `${this.keyField}` : '');
    this.search = h('input.legend-search', { type: 'search', name: 'legend-filter',
      placeholder: 'find a key', 'aria-label': `find a ${this.keyField || 'key'}`, size: 14 });
    this.search.addEventListener('input', () => {
      this.filter = this.search.value;
      if (this.shown) this.drawLegend(this.shown.img);
    });
    this.search.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && this.search.value) {
        e.stopPropagation();
        this.search.value = '';
        this.filter = '';
        if (this.shown) this.drawLegend(this.shown.img);
      }
    });
    this.legendNote = h('li.muted.legend-note', { hidden: true });
    this.legend = h('ul.legend', { 'aria-label': `${this.keyField || 'keys'}: click to highlight` },
      this.legendNote);
    this.more = h('button.legend-more.small', { type: 'button', hidden: true, 'aria-expanded': 'false' });
    this.more.onclick = () => {
      this.expanded = !this.expanded;
      if (this.shown) this.drawLegend(this.shown.img);
    };
    this.legendBox = h('div.hm-legend',
      h('div.legend-head', this.legendTitle, this.search), this.legend, this.more);
    this.details = h('div.hm-details', { hidden: true, 'aria-live': 'polite' });
    // flight-recorder triggers on this instrumentation (triggers.js): the operator's only
    this.triggers = session.scope ? null : new TriggerBox(this);
    // the "Trigger…" button goes in the panel's header (panel.js: a view's actions), its form
    // and list above the controls: Tab from the controls goes on to the image
    this.actions = this.triggers ? this.triggers.button : null;
    this.el = h('div.heatmap',
      this.triggers ? this.triggers.el : null,
      h('div.controls',
        h('label', 'y from ', this.yminIn),
        h('label', ' to ', this.ymaxIn),
        h('label.check', this.autoIn, ' auto'),
        h('label', ' scale ', this.scaleIn),
        h('label', ' shade by ', this.colorIn),
        h('label.check', this.pctlIn, ' ',
          PCTL.map(([, n, c]) => h('span.pctl-key', { style: { borderColor: `var(--pctl-${n.slice(1)}, ${c})` } }, n))),
        this.toggles.length ? h('span.seg-group', this.toggles) : null),
      h('div.hm-frame', this.yaxis, this.plot, h('div'), this.xaxis),
      this.scale,
      this.keyField ? this.legendBox : null,
      this.details);

    this.overlay.addEventListener('mousemove', (e) => {
      this.pointer = this.pixel(e);
      if (this.drag) return; // the band follows (a listener on the window)
      this.hoverAt(this.pointer.x, this.pointer.y);
    });
    this.overlay.addEventListener('mousedown', (e) => this.dragStart(e));
    this.overlay.addEventListener('mouseleave', () => {
      this.pointer = null;
      this.hideTip();
    });
    this.overlay.addEventListener('click', (e) => {
      if (this.dragged) { // the end of a drag, not a click
        this.dragged = false;
        return;
      }
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
      if (!this.pointer) this.hideTip();
      this.paintOverlay();
    });
  }

  // Drag-to-zoom: the button pressed on the image starts a drag; moving DRAG_MIN pixels or
  // more makes it one (a band over the columns dragged across); released, every panel shows
  // those columns' interval, from the start of the first to the end of the last.
  dragStart(e) {
    if (e.button !== 0 || !this.shown) return;
    const x = this.pixel(e).x;
    this.drag = { x0: x, x1: x, shown: this.shown, moved: false };
    this.dragged = false;
    const move = (ev) => {
      const d = this.drag;
      if (!d) return;
      d.x1 = this.pixel(ev).x;
      if (!d.moved && Math.abs(d.x1 - d.x0) >= DRAG_MIN) {
        d.moved = true;
        this.hideTip();
      }
      if (d.moved) {
        ev.preventDefault(); // no text selection meanwhile
        this.paintOverlay();
      }
    };
    const up = (ev) => {
      window.removeEventListener('mousemove', move, true);
      window.removeEventListener('mouseup', up, true);
      const d = this.drag;
      this.drag = null;
      if (!d) return;
      d.x1 = this.pixel(ev).x;
      if (!d.moved && Math.abs(d.x1 - d.x0) < DRAG_MIN) return; // a click
      this.dragged = ev.target === this.overlay; // its click event follows: not a click
      this.paintOverlay();
      const iv = this.dragInterval(d);
      if (iv) time.zoom(iv.start, iv.duration);
    };
    window.addEventListener('mousemove', move, true);
    window.addEventListener('mouseup', up, true);
  }

  // The interval of the columns between pixels x0 and x1 of the image a drag began on.
  dragInterval(d) {
    const { img } = d.shown;
    const g = this.colG(img), n = Math.max(1, Math.round(img.duration / g));
    const a = columnAt(Math.min(d.x0, d.x1), img.width, n), b = columnAt(Math.max(d.x0, d.x1), img.width, n);
    return { start: img.start_time + a * g, duration: (b - a + 1) * g };
  }

  hideTip() {
    this.tip.hidden = true;
    this.tipKey = null;
    delete this.tip.dataset.time;
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
    const p = { width: this.width(), height: HEIGHT, ymin: this.ymin, coloring: this.coloring };
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

  // Seconds a column of img covers: the reply's granularity, else the instrumentation's.
  colG(img) {
    const g = Number(img && img.granularity);
    return g > 0 ? g : this.panel.inst.granularity;
  }

  // The resolution of img when its reply does not say (Panel.showResolution).
  gran(img) {
    return this.colG(img);
  }

  // What an interval span seconds long is aligned to: the columns of the image shown when it
  // is of that length (the server chose them), else the instrumentation's granularity.
  align(span) {
    const img = this.shown && this.shown.img, g = Number(img && img.granularity);
    if (g > 0 && img.duration >= span && img.duration < span + g) return g;
    return this.panel.inst.granularity;
  }

  async refresh(iv, extra, signal) {
    const path = `${this.panel.path}/value/heatmap`;
    const params = { ...this.drawParams(), ...iv, ...extra };
    const img = await getBackground(`${path}/image`, params, signal);
    const pic = new Image();
    pic.src = `data:image/png;base64,${img.image}`;
    await pic.decode();
    const g = this.colG(img);
    // the legend's counts are asked meanwhile; the image does not wait for them
    const quiet = (p) => p.catch((e) => {
      if (e.name === 'AbortError') throw e;
      return null; // the legend goes without counts
    });
    const more = Promise.all([
      this.peakOf(img),
      this.keyField ? quiet(this.keyCounts(img, signal)) : null,
    ]);
    more.catch(() => {}); // awaited below (an abort must not go unhandled meanwhile)
    const pct = this.pctl && img.ymax > img.ymin
      ? await getBackground(`${path}/percentile`, {
        start_time: img.start_time, duration: g, ndatapoints: Math.round(img.duration / g),
        ymin: img.ymin, ymax: img.ymax, yscale: img.yscale, timeout: 0, method: 'exact',
        percentile: PCTL.map((p) => p[0]).join(','),
      }, signal)
      : null;
    if (signal && signal.aborted) throw new DOMException('aborted', 'AbortError');
    const last = this.shown && this.shown.peak;
    this.draw(img, pic, pct, params, last && last.coloring === params.coloring ? last : null);
    const [peak, counts] = await more;
    if (signal && signal.aborted) throw new DOMException('aborted', 'AbortError');
    if (counts !== this.counts) this.countsOf = counts ? { start: img.start_time, duration: img.duration } : null;
    this.counts = counts;
    if (this.shown.img === img) {
      this.shown.peak = peak && { ...peak, coloring: params.coloring };
      this.drawScale(img, this.shown.peak, params);
      this.drawLegend(img);
    }
    return img;
  }

  // Events per key over the image's interval (value/raw sums the slots), for the legend's
  // order and counts: asked again when the interval moved by 5 s or more (every 5 s while
  // live: the reply lists every key's histogram, the heaviest of a panel's requests).
  async keyCounts(img, signal) {
    const was = this.countsOf;
    if (this.counts && was && was.duration === img.duration && img.start_time >= was.start &&
      img.start_time - was.start < 5) return this.counts;
    return this.rawCounts(img, signal);
  }

  async rawCounts(img, signal) {
    const r = await getBackground(`${this.panel.path}/value/raw`,
      { start_time: img.start_time, duration: img.duration, timeout: 0 }, signal);
    const out = new Map();
    const v = r && r.value;
    if (!v || typeof v !== 'object' || Array.isArray(v)) return out;
    for (const [k, ranges] of Object.entries(v)) {
      let n = 0;
      if (Array.isArray(ranges)) for (const e of ranges) n += Array.isArray(e) ? Number(e[1]) || 0 : 0;
      else if (typeof ranges === 'number') n = ranges;
      out.set(k, n);
    }
    return out;
  }

  // The largest count of a cell of any drawn layer: what full colour means with count
  // shading. The image reply says it (`max_count`, the server's own figure).
  peakOf(img) {
    return Number.isFinite(img.max_count) ? { max: img.max_count } : null;
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

  draw(img, pic, pct, params, peak) {
    const W = img.width, H = img.height;
    for (const c of [this.image, this.overlay]) {
      if (c.width !== W) c.width = W;
      if (c.height !== H) c.height = H;
    }
    this.image.getContext('2d').drawImage(pic, 0, 0);
    this.shown = { img, params, pct, peak };
    this.frame++;
    this.plot.dataset.start = img.start_time;
    this.plot.dataset.duration = img.duration;
    this.plot.dataset.granularity = this.colG(img);
    this.plot.dataset.ymax = img.ymax;
    this.plot.dataset.yscale = img.yscale === 'log' ? 'log' : 'linear';
    this.plot.dataset.coloring = params.coloring || 'rank';
    if (this.cursor) {
      const { n, nb } = this.geometry();
      this.cursor = { col: Math.min(n - 1, this.cursor.col), row: Math.min(nb - 1, this.cursor.row) };
    }
    this.paintOverlay();
    this.axes(img);
    this.drawScale(img, peak, params);
    this.drawLegend(img);
    // the cell under a still pointer (or the keyboard's cursor) holds another second now:
    // the tooltip names that one (none while dragging)
    if (this.drag) {
      // the band is painted above; the tooltip waits for the drag to end
    } else if (this.pointer) {
      this.hoverAt(this.pointer.x, this.pointer.y);
    } else if (this.cursor && this.keyboard && document.activeElement === this.overlay) {
      const { x, y } = this.cell(this.cursor.col, this.cursor.row);
      this.hoverAt(x, y);
    }
  }

  // The overlay, whole: percentile lines, the chosen cell's outline, the keyboard's cursor.
  paintOverlay() {
    if (!this.shown) return;
    const { img, pct } = this.shown;
    const W = img.width, H = img.height;
    const o = this.overlay.getContext('2d');
    o.clearRect(0, 0, W, H);
    const n = Math.max(1, Math.round(img.duration / this.colG(img)));
    if (pct && img.ymax > img.ymin) {
      const pts = Array.isArray(pct) ? pct : [pct];
      PCTL.forEach(([, name, colour], k) => {
        o.strokeStyle = cssVar(this.el, `--pctl-${name.slice(1)}`, colour); // a theme's, if set
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
    o.setLineDash([]);
    const drag = this.drag;
    if (drag && drag.moved) { // the band dragged across: the columns it will zoom into
      const x0 = Math.min(drag.x0, drag.x1), x1 = Math.max(drag.x0, drag.x1);
      o.fillStyle = cssVar(this.el, '--hm-drag', 'rgba(37, 99, 235, 0.18)');
      o.fillRect(x0, 0, x1 - x0 + 1, H);
      o.strokeStyle = cssVar(this.el, '--hm-drag-edge', 'rgba(37, 99, 235, 0.9)');
      o.lineWidth = 1;
      o.strokeRect(x0 + 0.5, 0.5, x1 - x0, H - 1);
      this.plot.dataset.band = `${x0},${x1}`;
    } else {
      delete this.plot.dataset.band;
    }
    const mark = this.markBox();
    if (mark) {
      const { x0, x1, y0, y1 } = mark;
      this.plot.dataset.mark = `${x0},${y0},${x1},${y1}`;
      o.lineWidth = 2;
      o.strokeStyle = cssVar(this.el, '--hm-mark-halo', '#ffffff');
      o.strokeRect(x0 - 2, y0 - 2, x1 - x0 + 4, y1 - y0 + 4);
      o.strokeStyle = cssVar(this.el, '--hm-mark', '#0f172a');
      o.strokeRect(x0 - 1, y0 - 1, x1 - x0 + 2, y1 - y0 + 2);
    } else {
      delete this.plot.dataset.mark;
    }
    if (this.cursor && this.keyboard && document.activeElement === this.overlay) {
      const { x0, x1, y0, y1 } = this.cell(this.cursor.col, this.cursor.row);
      o.lineWidth = 2;
      o.setLineDash([3, 2]);
      o.strokeStyle = cssVar(this.el, '--hm-cursor', '#0f172a');
      o.strokeRect(x0 - 1, y0 - 1, x1 - x0 + 2, y1 - y0 + 2);
      o.setLineDash([]);
    }
  }

  // Where the chosen cell is on the image shown: its second's column (none once it scrolled
  // out) and its row (the same row on the same axis; else its value range on this one).
  markBox() {
    const c = this.chosen;
    if (!c || !this.shown) return null;
    const { img, n, nb, W, H } = this.geometry();
    const g = this.colG(img);
    const col = Math.floor((c.t - img.start_time) / g);
    if (col < 0 || col >= n) return null;
    const x0 = Math.floor((col * W) / n), x1 = Math.floor(((col + 1) * W) / n);
    let y0, y1;
    if (img.ymin === c.ymin && img.ymax === c.ymax && nb === c.nb && (img.yscale === 'log') === c.log) {
      y0 = Math.floor((c.row * H) / nb);
      y1 = Math.floor(((c.row + 1) * H) / nb);
    } else {
      y0 = Math.max(0, Math.round(this.yOf(c.hi, img)));
      y1 = Math.min(H, Math.round(this.yOf(c.lo, img)));
      if (!(y1 > y0)) return null;
    }
    return { x0, x1, y0, y1 };
  }

  axes(img) {
    const W = img.width;
    let ticks = [];
    if (img.ymax > img.ymin) {
      if (img.yscale === 'log') {
        ticks = logTicks(Math.max(img.ymin, 1), img.ymax);
      } else if (this.type && this.type.unit === 'seconds') {
        const f = Math.pow(this.type.base || 10, this.type.power || 0);
        ticks = durationTicks(img.ymin * f, img.ymax * f).map((s) => Math.round(s / f));
      } else {
        ticks = niceTicks(img.ymin, img.ymax, 5);
      }
    }
    const names = fmtTicks(ticks, this.type, img.yscale === 'log');
    fill(this.yaxis, ticks.map((v, i) =>
      h('span', { style: { top: `${Math.round(this.yOf(v, img))}px` } }, names[i])));
    const labels = [];
    for (const { t, label } of timeTicks(img.start_time, img.start_time + img.duration, W)) {
      const x = Math.round(((t - img.start_time) / img.duration) * W);
      if (x >= 25 && x <= W - 25) labels.push(h('span', { style: { left: `${x}px` } }, label));
    }
    fill(this.xaxis, labels);
  }

  // The colour scale: the ramp of the first drawn layer (the rest's, or a key's), from pale
  // to full, and what full means: the largest count of a cell (by count), or the cell ranked
  // first (by rank).
  drawScale(img, peak, params) {
    const layers = Array.isArray(img.layers) ? img.layers : [{ hue: defaultHue(0) }];
    if (!layers.length || !(img.ymax > img.ymin)) {
      this.scale.hidden = true;
      return;
    }
    const hue = layers[0].hue;
    // the server's ramp: HSV(hue, 0.9·v, 0.95) is linear in v in RGB, from (242, 242, 242)
    this.scaleBar.style.background = `linear-gradient(to right, rgb(242, 242, 242), ${hueColor(hue)})`;
    const rank = params.coloring === 'rank';
    const max = peak && Number.isFinite(peak.max) ? peak.max : null;
    this.scale.dataset.max = max === null ? '' : String(max);
    this.scale.dataset.coloring = rank ? 'rank' : 'linear';
    const unit = (k) => (k === 1 ? 'event' : 'events');
    if (max === 0) {
      this.scaleLo.textContent = '';
      this.scaleHi.textContent = '';
      this.scaleText.textContent = 'no events in this image';
    } else if (rank) {
      this.scaleLo.textContent = 'fewest';
      this.scaleHi.textContent = max === null ? 'most' : `most: ${fmtCount(max)}`;
      this.scaleText.textContent = 'shade by rank: a cell is as dark as the share of cells with fewer events';
    } else {
      this.scaleLo.textContent = '0';
      this.scaleHi.textContent = max === null ? 'max' : fmtCount(max);
      this.scaleText.textContent = max === null ? 'events per cell (one second × one row)'
        : `${unit(max)} per cell (one second × one row); a cell of n is n ÷ ${fmtCount(max)} of full colour`;
    }
    this.scale.hidden = false;
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

  // The colour of a key's events on the image shown (null: not drawn).
  hueOfKey(k, layers) {
    const { own, rest } = layers;
    if (own.has(k)) return own.get(k);
    if (this.mode === 'exclude' && this.selected.includes(k)) return null;
    return rest;
  }

  // A key's swatch; pale (as in the legend) when the key is drawn with the rest, unless full
  // (the tooltip's dark background).
  swatch(k, layers, full = false) {
    const hue = this.hueOfKey(k, layers);
    const sw = h('span.swatch', { dataset: { key: k }, style: { background: hue === null ? 'transparent' : hueColor(hue) } });
    sw.classList.toggle('rest', !full && !layers.own.has(k));
    return sw;
  }

  toggleKey(k) {
    const i = this.selected.indexOf(k);
    if (i >= 0) this.selected.splice(i, 1);
    else if (this.selected.length < MAX_SELECTED) this.selected.push(k);
    if (this.mode === 'decompose_all') this.mode = null;
    this.changed();
  }

  // The legend, updated in place: keys by their events in the interval, biggest first (the
  // top LEGEND_TOP, the selected ones and the focused one; "N more" shows the rest, and the
  // search box finds any). Its order holds still while the pointer is over it, so that
  // nothing moves under a click; a focused key is never moved, so it keeps its focus.
  drawLegend(img) {
    if (!this.keyField) return;
    const layers = this.layersOf(img);
    const { own, rest } = layers;
    const present = img.present || [];
    const has = new Set(present);
    const counts = this.counts;
    const excluded = this.mode === 'exclude' ? new Set(this.selected) : new Set();
    const keys = [...new Set([...present, ...this.selected, ...own.keys()])];
    const count = (k) => (counts && counts.has(k) ? counts.get(k) : has.has(k) ? 0 : -1);
    const order = keys.map((k) => [k, count(k)]).sort(byCount).map(([k]) => k);
    const place = new Map(order.map((k, i) => [k, i]));
    const want = new Set(keys);
    const active = document.activeElement;
    for (const [k, li] of this.items)
      if (!want.has(k) && !li.contains(active)) {
        li.remove();
        this.items.delete(k);
      }
    // held still under the pointer (nothing moves under a click)
    const frozen = this.legendBox.matches(':hover');
    const q = this.filter.trim().toLowerCase();
    let hidden = 0, matches = 0;
    for (const k of order) {
      let li = this.items.get(k);
      if (!li) {
        const btn = h('button.key', { type: 'button' }, h('span.swatch'), h('span.key-name', keyText(k)),
          h('span.key-count'), h('span.muted.key-note'));
        btn.onclick = () => this.toggleKey(k);
        li = h('li', { dataset: { key: k } }, btn);
        this.items.set(k, li);
        this.legend.insertBefore(li, this.legendNote); // placed below when not frozen
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
      const c = counts && counts.has(k) ? counts.get(k) : null;
      btn.querySelector('.key-count').textContent = c === null ? '' : fmtCount(c);
      li.dataset.count = c === null ? '' : String(c);
      btn.querySelector('.key-note').textContent = has.has(k) ? '' : ' (no data)';
      const match = !q || keyText(k).toLowerCase().includes(q);
      if (match) matches++;
      const show = q ? match
        : this.expanded || place.get(k) < LEGEND_TOP || pressed || li.contains(active);
      if (!show && !q) hidden++;
      li.hidden = !show;
    }
    if (!frozen) {
      // the focused key is never moved (that would blur it): the others move around it
      let prev = null;
      for (const k of order) {
        const li = this.items.get(k);
        const next = () => (prev ? prev.nextSibling : this.legend.firstChild);
        if (li.contains(active)) while (next() !== li) li.after(next());
        else if (next() !== li) this.legend.insertBefore(li, next());
        prev = li;
      }
    }
    let restItem = this.legend.querySelector('.rest-item');
    if (rest !== null && own.size > 0) {
      restItem = restItem || h('li.rest-item', h('span.swatch'), h('span.muted', 'everything else'));
      restItem.querySelector('.swatch').style.background = hueColor(rest);
      if (restItem.nextSibling !== this.legendNote) this.legend.insertBefore(restItem, this.legendNote);
    } else if (restItem) {
      restItem.remove();
    }
    this.legendTitle.textContent = `${this.keyField}: ${fmtCount(keys.length)} ${keys.length === 1 ? 'key' : 'keys'}` +
      (counts ? ', by events' : '');
    this.legendNote.hidden = present.length > 0 && !(q && matches === 0);
    this.legendNote.textContent = q && matches === 0 ? `no ${this.keyField} matches “${this.filter.trim()}”`
      : 'no data in this interval';
    const extra = q ? 0 : this.expanded ? Math.max(0, keys.length - LEGEND_TOP) : hidden;
    this.more.hidden = extra === 0;
    this.more.textContent = this.expanded ? 'fewer' : `${fmtCount(extra)} more`;
    this.more.setAttribute('aria-expanded', String(this.expanded));
    this.recolourDetails(layers);
  }

  // The details' swatches in the hues of the image shown (a key selected from the details
  // takes its own hue once the image with its layer comes).
  recolourDetails(layers) {
    for (const sw of this.details.querySelectorAll('.swatch[data-key]')) {
      const hue = this.hueOfKey(sw.dataset.key, layers);
      sw.style.background = hue === null ? 'transparent' : hueColor(hue);
      sw.classList.toggle('rest', !layers.own.has(sw.dataset.key));
    }
  }

  // The keyboard's cell cursor: arrows move it by a column or a row, Home/End to the first
  // or newest column, Enter or Space opens its details; the tooltip follows it.
  geometry() {
    const { img } = this.shown;
    const n = Math.max(1, Math.round(img.duration / this.colG(img)));
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
    this.paintOverlay();
    const { x, y } = this.cell(col, row);
    this.hoverAt(x, y);
  }

  key(e) {
    if (!this.shown) return;
    this.keyboard = true;
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (moves[e.key]) {
      e.preventDefault();
      this.pointer = null; // the keyboard's cell is the one named now
      this.moveCursor(...moves[e.key]);
    } else if (e.key === 'Home' || e.key === 'End') {
      e.preventDefault();
      this.pointer = null;
      this.moveCursor(0, 0, e.key === 'Home' ? 0 : Infinity);
    } else if ((e.key === 'Enter' || e.key === ' ') && this.cursor) {
      e.preventDefault();
      const { x, y } = this.cell(this.cursor.col, this.cursor.row);
      this.clickAt(x, y);
    } else if (e.key === 'Escape') {
      // dismissed until the next move: the next image must not bring the tooltip back
      this.pointer = null;
      this.keyboard = false;
      this.hideTip();
      this.closeDetails();
      this.paintOverlay();
    }
  }

  pixel(e) {
    const r = this.overlay.getBoundingClientRect();
    const x = Math.floor(((e.clientX - r.left) * this.overlay.width) / r.width);
    const y = Math.floor(((e.clientY - r.top) * this.overlay.height) / r.height);
    return { x: Math.max(0, Math.min(this.overlay.width - 1, x)),
      y: Math.max(0, Math.min(this.overlay.height - 1, y)) };
  }

  // The cell at pixel (x, y) of an image shown: its second, row and value range.
  cellAt(shown, x, y) {
    const { img } = shown;
    const g = this.colG(img);
    const n = Math.max(1, Math.round(img.duration / g)), nb = img.nbuckets || 100;
    const row = rowAt(y, img.height, nb), j = nb - 1 - row, log = img.yscale === 'log';
    return { t: img.start_time + columnAt(x, img.width, n) * g, row, ymin: img.ymin, ymax: img.ymax,
      nb, log, lo: rowEdge(img.ymin, img.ymax, nb, j, log), hi: rowEdge(img.ymin, img.ymax, nb, j + 1, log) };
  }

  // What a pixel of an image shown holds; null when the image has no range to ask about.
  // events: whether to ask for the recorder's raw events of the cell (a click does; a hover
  // does not, since reading them copies a recording's rings).
  detailsOf(shown, x, y, signal, events = false) {
    const { img, params } = shown;
    if (!(img.ymax > img.ymin)) return Promise.resolve(null);
    return get(`${this.panel.path}/value/heatmap/details`, {
      ...params, start_time: img.start_time, duration: img.duration, ymin: img.ymin,
      ymax: img.ymax, timeout: 0, x, y, events: events ? 'true' : 'false',
    }, signal);
  }

  // The tooltip of the cell at pixel (x, y) of the image on screen now; called again by each
  // new image while the pointer (or the keyboard's cursor) stays.
  hoverAt(x, y) {
    if (!this.shown) return;
    const shown = this.shown;
    const { t, lo, hi } = this.cellAt(shown, x, y);
    const r = this.overlay.getBoundingClientRect();
    const cx = (x * r.width) / this.overlay.width, cy = (y * r.height) / this.overlay.height;
    this.tip.hidden = false;
    this.tip.style.left = `${Math.max(0, Math.min(cx + 14, r.width - 180))}px`;
    this.tip.style.top = `${Math.max(0, cy - 10)}px`;
    const key = `${this.frame}:${x},${y}`;
    if (this.tipKey === key) return;
    const cellKey = `${t}:${lo}:${hi}`;
    const same = this.tipCell === cellKey;
    this.tipKey = key;
    this.tipCell = cellKey;
    this.tip.dataset.time = String(t);
    if (!same) {
      // the second at once; the counts when the server answers
      fill(this.tip, h('div.tip-time', fmtWhen(t, shown.img.duration)), h('div.tip-range', fmtRange(lo, hi, this.type)),
        h('div.muted', '…'));
    } else {
      this.tip.classList.add('stale'); // the same cell: its counts may change
    }
    clearTimeout(this.hoverTimer);
    this.hoverTimer = setTimeout(async () => {
      if (this.hoverAbort) this.hoverAbort.abort();
      this.hoverAbort = new AbortController();
      try {
        const d = await this.detailsOf(shown, x, y, this.hoverAbort.signal);
        if (this.tipKey !== key) return;
        this.tip.classList.remove('stale');
        if (!d) {
          fill(this.tip, h('div.tip-time', fmtWhen(t, shown.img.duration)), h('div.muted', 'no data'));
          return;
        }
        const layers = this.layersOf(shown.img);
        const keys = Object.entries(d.present || {}).sort(byCount);
        const top = keys.slice(0, TIP_KEYS);
        fill(this.tip,
          h('div.tip-time', fmtWhen(d.bucket_time, shown.img.duration)),
          h('div.tip-range', fmtRange(d.bucket_ymin, d.bucket_ymax, this.type)),
          h('div.tip-count', `${fmtCount(d.total)} ${d.total === 1 ? 'event' : 'events'}`),
          top.map(([k, c]) => h('div.tip-key', { dataset: { key: k } }, this.swatch(k, layers, true),
            h('span.tip-key-name', keyText(k)), h('span.tip-key-count', fmtCount(c)))),
          keys.length > top.length ? h('div.muted', `${keys.length - top.length} more`) : null,
          d.total ? h('div.muted', 'click for details') : null);
      } catch (err) {
        if (err.name !== 'AbortError' && this.tipKey === key) fill(this.tip, h('div.error', err.message));
      }
    }, 60);
  }

  // The details of the cell at pixel (x, y) of the image on screen at the click: that cell
  // is chosen (outlined, and followed as the image scrolls).
  async clickAt(x, y) {
    if (!this.shown) return;
    const shown = this.shown;
    this.chosen = this.cellAt(shown, x, y);
    this.paintOverlay();
    if (this.clickAbort) this.clickAbort.abort();
    this.clickAbort = new AbortController();
    try {
      const d = await this.detailsOf(shown, x, y, this.clickAbort.signal, true);
      if (d) this.showDetails(d, shown);
    } catch (err) {
      if (err.name === 'AbortError') return;
      fill(this.details, h('p.error', err.message));
      this.details.hidden = false;
    }
  }

  // The panel runs or stops: its triggers' list is polled while it runs (triggers.js).
  start() {
    if (this.triggers) this.triggers.start();
  }

  stop() {
    if (this.triggers) this.triggers.stop();
  }

  closeDetails() {
    this.details.hidden = true;
    this.chosen = null;
    this.chosenBand = null;
    this.paintOverlay();
  }

  showDetails(d, shown) {
    const rows = Object.entries(d.present || {}).sort(byCount);
    const layers = this.layersOf((this.shown || shown).img);
    const img = (this.shown || shown).img, g = this.colG(img), when = (t) => fmtWhen(t, img.duration);
    const close = h('button.small', { type: 'button', title: 'close', 'aria-label': 'close the details',
      onclick: () => this.closeDetails() }, '×');
    this.chosenBand = { lo: d.bucket_ymin, hi: d.bucket_ymax }; // a trigger's band (triggers.js)
    fill(this.details,
      h('div.details-head', { dataset: { start: d.bucket_time, end: d.bucket_time + g } },
        h('strong.details-time', `${when(d.bucket_time)} – ${when(d.bucket_time + g)}`),
        h('span', ` · ${this.numField} ${fmtRange(d.bucket_ymin, d.bucket_ymax, this.type)}`),
        h('span.details-total', ` · ${fmtCount(d.total)} ${d.total === 1 ? 'event' : 'events'}`),
        close),
      this.keyField && rows.length
        ? h('table.details-table',
          h('thead', h('tr', h('th', this.keyField), h('th.n', 'count'), h('th.n', 'share'))),
          h('tbody', rows.map(([k, c]) => {
            const tr = h('tr', { dataset: { key: k }, title: 'click to highlight', tabIndex: 0 },
              h('td', this.swatch(k, layers), keyText(k)),
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
        : h('p.muted', d.total ? '' : 'no events in this cell'),
      // spans (trace.spans): a few traces of the cell, each opening as a waterfall
      (d.exemplars || []).length
        ? h('div.exemplars', h('h4', 'Traces in this cell'),
          h('table.details-table',
            h('thead', h('tr', h('th', 'trace'), h('th', 'service'), h('th', 'span'), h('th.n', 'duration'))),
            h('tbody', d.exemplars.map((x) => h('tr',
              h('td', h('a.trace-link', { href: `#/trace/${encodeURIComponent(x.traceId)}`, title: 'open the trace' },
                x.traceId)),
              h('td', x.service), h('td', x.name), h('td.n', fmtValue(x.duration * 1000, this.type)))))))
        : null,
      this.rawEvents(d));
    this.details.hidden = false;
  }

  // The recorder's raw events of the cell (system call latency), or what the recording says
  // when it holds none of them, with a button that snapshots the session.
  rawEvents(d) {
    const rec = d.recording;
    if (!rec) return null;
    const ev = d.events || [];
    const snap = rec.session ? this.snapshotButton(rec.session) : null;
    if (!d.events) {
      const why = rec.state === 'none' ? 'no recording session records system calls'
        : rec.reason || rec.state;
      return h('div.raw-events', h('p.muted.raw-events-none', `Raw events: ${why}`));
    }
    const t = (ns) => {
      const d0 = new Date(Math.floor(ns / 1e6));
      return `${d0.toLocaleTimeString([], { hour12: false })}.${String(Math.floor(ns / 1e3) % 1e6).padStart(6, '0')}`;
    };
    return h('div.raw-events',
      h('h4', `Raw events in this cell (recording ${rec.session}` +
        `${rec.state === 'partial' ? ', which holds only part of this time' : ''}): ` +
        `${fmtCount(ev.length)} of ${fmtCount(d.events_total)}`, ' ', snap),
      ev.length
        ? h('table.details-table.raw-events-table',
          h('thead', h('tr', h('th', 'exit'), h('th', 'comm'), h('th.n', 'pid'), h('th.n', 'tid'),
            h('th', 'syscall'), h('th.n', 'latency'), h('th.n', 'ret'), h('th', 'cpu'))),
          h('tbody', ev.map((e) => h('tr', { dataset: { tid: e.tid, syscall: e.syscall } },
            h('td', t(e.exit_ns)), h('td', e.comm), h('td.n', String(e.pid)), h('td.n', String(e.tid)),
            h('td', { title: e.path || '' }, e.syscall), h('td.n', fmtValue(e.latency_ns, this.type)),
            h('td.n', String(e.ret)), h('td', String(e.cpu))))))
        : h('p.muted', 'the recording holds none of this cell\'s operations'));
  }

  // A button that snapshots session name (POST .../recorder/sessions/NAME/snapshot) and then
  // offers the snapshot's archive.
  snapshotButton(name) {
    const out = h('span.raw-events-snap');
    const btn = h('button.small', { type: 'button', title: `snapshot the recording ${name}` }, 'snapshot');
    btn.onclick = async () => {
      btn.disabled = true;
      try {
        const r = await call('POST', `/recorder/sessions/${encodeURIComponent(name)}/snapshot`, { body: {} });
        const a = h('a.raw-events-archive', { href: '#', title: 'download the snapshot (a tar of its CTF trace)' },
          `${r.id}.tar`);
        a.onclick = (ev) => {
          ev.preventDefault();
          download(`${base()}/recorder/snapshots/${encodeURIComponent(r.id)}/archive`, `${r.id}.tar`);
        };
        fill(out, a);
      } catch (err) {
        btn.disabled = false;
        fill(out, btn, h('span.error', ` ${err.message}`));
      }
    };
    fill(out, btn);
    return out;
  }
}
