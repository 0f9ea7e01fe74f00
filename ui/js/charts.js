// The chart views of instrumentations without a numeric decomposition, from value/raw with
// one point per granularity: a line for a scalar, stacked areas for a discrete decomposition
// (top keys first, the rest summed as "other"), with axes in human units, a hover readout
// and a legend. Drawn on a canvas sized to the panel; each redraw paints a whole frame, in the
// page's theme (the --plot-* custom properties of sonde.css). The hover readout lists the
// keys of the second pointed at biggest first, each with its colour.
//
// Intervals of history (a start named) are asked as at most about MAX_POINTS points: each
// point sums a step of whole granularities (1 h: 10 s; 30 d: 2 h), read by the server from
// the finest stored tier that fits.

import { getBackground } from './api.js';
import { fill, h } from './dom.js';
import { fmtCount, fmtNumber, fmtWhen, niceTicks, timeTicks } from './units.js';

const HEIGHTS = [240, 440, 640]; // by a dashboard's height step
const M = { left: 64, right: 12, top: 10, bottom: 24 };
const TOP = 10; // keys drawn; the rest is "other"
const FULL_MS = 30_000;
const OTHER = 'other';
const MAX_POINTS = 360;
const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
  86400];

// The seconds each point of a chart of span seconds sums: a round multiple of the
// granularity g, so that there are at most MAX_POINTS points (or one step a day).
export function chartStep(span, g) {
  const s = STEPS.find((x) => x >= g && x % g === 0 && span / x <= MAX_POINTS);
  return s || Math.max(g, Math.ceil(span / MAX_POINTS / g) * g);
}
// The theme's colours for what is drawn (read at each draw: the theme may change).
function theme(el) {
  const cs = getComputedStyle(el);
  const v = (name, dflt) => cs.getPropertyValue(name).trim() || dflt;
  return {
    bg: v('--plot-bg', '#fff'), grid: v('--plot-grid', '#e5e7eb'), text: v('--plot-text', '#4b5563'),
    line: v('--plot-line', '#0b5cad'), fill: v('--plot-fill', 'rgba(11, 92, 173, 0.12)'),
    other: v('--plot-other', '#9ca3af'),
  };
}

// distinct colours for the bands, in order of first appearance (keys keep theirs)
const PALETTE = ['#2563eb', '#f97316', '#16a34a', '#dc2626', '#9333ea', '#0891b2', '#ca8a04',
  '#db2777', '#4f46e5', '#65a30d', '#0d9488', '#c2410c'];

export class ChartView {
  constructor(panel, discrete) {
    this.panel = panel;
    this.discrete = discrete;
    this.colours = new Map(); // a key keeps its colour while the panel lives
    this.height = HEIGHTS[0];
    this.canvas = h('canvas.chart', { width: 600, height: this.height });
    this.tip = h('div.hm-tip', { role: 'tooltip', hidden: true });
    this.legend = h('ul.legend', { 'aria-label': 'keys' });
    this.el = h('div.chartview', h('div.chart-plot', this.canvas, this.tip), this.legend);
    this.canvas.addEventListener('mousemove', (e) => this.hover(e));
    this.canvas.addEventListener('mouseleave', () => { this.tip.hidden = true; });
    this.shown = null;
  }

  // A dashboard's height step (1 to 3): a taller chart.
  setHeight(step) {
    const ht = HEIGHTS[Math.max(0, Math.min(HEIGHTS.length - 1, step - 1))];
    if (ht === this.height) return;
    this.height = ht;
    this.canvas.style.height = `${ht}px`;
    if (this.shown) this.draw(this.shown.pts);
  }

  // A key keeps its colour while it is on screen; a new key takes a colour no key on screen
  // has (onScreen: the keys drawn now).
  colour(k, onScreen) {
    if (k === OTHER) return this.otherColour || '#9ca3af';
    if (!this.colours.has(k)) {
      const used = new Set([...(onScreen || [])].filter((x) => this.colours.has(x)).map((x) => this.colours.get(x)));
      const free = PALETTE.find((c) => !used.has(c)) || PALETTE[this.colours.size % PALETTE.length];
      this.colours.set(k, free);
    }
    return this.colours.get(k);
  }

  // What an interval span seconds long is aligned to: its points' step.
  align(span) {
    return chartStep(span, this.panel.inst.granularity);
  }

  // The resolution of a point when its reply does not say: the step it was asked for.
  gran(pt) {
    return pt && pt.end_time > pt.start_time ? pt.end_time - pt.start_time : this.panel.inst.granularity;
  }

  get interval() {
    if (!this.shown || !this.shown.pts.length) return null;
    const p = this.shown.pts;
    return { start_time: p[0].start_time, duration: p[p.length - 1].end_time - p[0].start_time };
  }

  // Live charts end at the server's latest complete slot. ndatapoints counts forward from a
  // start, so each refresh first asks for the latest point alone (the server holds that
  // request until the slot is complete), then, when points are missing between it and what
  // the chart holds, for those. Every FULL seconds (and on any change) the whole interval
  // is fetched again, to take in sources that reported late.
  async refresh(iv, extra, signal) {
    const g = iv.start_time !== undefined ? chartStep(iv.duration, this.panel.inst.granularity)
      : this.panel.inst.granularity;
    const n = Math.max(1, Math.round(iv.duration / g));
    const raw = `${this.panel.path}/value/raw`;
    const fetchFrom = async (start, count, more) => {
      const r = await getBackground(raw, { ...more, duration: g, ndatapoints: count, start_time: start }, signal);
      return Array.isArray(r) ? r : [r];
    };
    let pts;
    if (iv.start_time !== undefined) {
      pts = await fetchFrom(iv.start_time, n, { timeout: 0 });
      this.cache = null;
    } else {
      const latest = await getBackground(raw, { ...extra, duration: g }, signal);
      const S = latest.start_time;
      const c = this.cache;
      const now = Date.now();
      if (c && c.n === n && c.pts.length && now - c.full < FULL_MS &&
          c.pts[c.pts.length - 1].start_time <= S && S - c.pts[c.pts.length - 1].start_time <= n * g) {
        const last = c.pts[c.pts.length - 1].start_time;
        const gap = (S - last) / g - 1;
        const mid = gap > 0 ? await fetchFrom(last + g, gap, { timeout: 0 }) : [];
        pts = [...c.pts.filter((p) => p.start_time < S), ...mid, latest].slice(-n);
      } else {
        pts = n > 1 ? [...await fetchFrom(S - (n - 1) * g, n - 1, { timeout: 0 }), latest] : [latest];
        this.cache = { n, pts, full: now };
      }
      this.cache = { ...this.cache, n, pts };
    }
    if (signal && signal.aborted) throw new DOMException('aborted', 'AbortError');
    this.draw(pts);
    return pts[pts.length - 1];
  }

  // Series to draw: [{key, values[]}], biggest first.
  series(pts) {
    if (!this.discrete) return [{ key: null, values: pts.map((p) => p.value || 0) }];
    const totals = new Map();
    for (const p of pts)
      for (const [k, v] of Object.entries(p.value || {})) totals.set(k, (totals.get(k) || 0) + v);
    const order = [...totals.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    const top = order.slice(0, TOP).map(([k]) => k);
    const out = top.map((k) => ({ key: k, total: totals.get(k), values: pts.map((p) => (p.value || {})[k] || 0) }));
    if (order.length > TOP) {
      const rest = new Set(order.slice(TOP).map(([k]) => k));
      out.push({ key: OTHER, total: order.slice(TOP).reduce((s, [, v]) => s + v, 0),
        values: pts.map((p) => Object.entries(p.value || {}).reduce((s, [k, v]) => s + (rest.has(k) ? v : 0), 0)) });
    }
    return out;
  }

  draw(pts) {
    const c = this.canvas;
    const HEIGHT = this.height;
    const th = theme(c);
    this.otherColour = th.other;
    const W = Math.max(200, Math.min(1400, this.el.clientWidth || 600));
    if (c.width !== W) c.width = W;
    if (c.height !== HEIGHT) c.height = HEIGHT;
    const ctx = c.getContext('2d');
    const pw = W - M.left - M.right, ph = HEIGHT - M.top - M.bottom;
    const ser = this.series(pts);
    const keys = ser.map((x) => x.key);
    for (const k of keys) this.colour(k, keys);
    const n = pts.length;
    const stack = pts.map((_, i) => ser.reduce((s, x) => s + x.values[i], 0));
    const max = Math.max(1, ...stack);
    const ticks = niceTicks(0, max * 1.05, 4);
    const ymax = ticks[ticks.length - 1] > max ? ticks[ticks.length - 1] : max * 1.05;
    const X = (i) => M.left + (n <= 1 ? pw / 2 : (i * pw) / (n - 1));
    const Y = (v) => M.top + ph - (v / ymax) * ph;
    this.shown = { pts, ser, X, W };

    ctx.fillStyle = th.bg;
    ctx.fillRect(0, 0, W, HEIGHT);
    ctx.strokeStyle = th.grid;
    ctx.fillStyle = th.text;
    ctx.font = '11px system-ui, sans-serif';
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (const t of ticks) {
      if (t > ymax) continue;
      ctx.beginPath();
      ctx.moveTo(M.left, Y(t) + 0.5);
      ctx.lineTo(W - M.right, Y(t) + 0.5);
      ctx.stroke();
      ctx.fillText(fmtNumber(t), M.left - 6, Y(t));
    }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    if (n > 1) {
      // labels at round times, placed between the points around them
      const t0 = pts[0].start_time, tn = pts[n - 1].start_time;
      for (const { t, label } of timeTicks(t0, tn, pw)) {
        const x = M.left + ((t - t0) / (tn - t0)) * pw, half = ctx.measureText(label).width / 2;
        if (x - half >= 0 && x + half <= W) ctx.fillText(label, x, M.top + ph + 6);
      }
    }
    // areas from the bottom up (biggest first at the bottom), or the scalar's line
    const base = new Array(n).fill(0);
    for (const s of ser) {
      const top = s.values.map((v, i) => base[i] + v);
      ctx.beginPath();
      for (let i = 0; i < n; i++) (i ? ctx.lineTo : ctx.moveTo).call(ctx, X(i), Y(top[i]));
      if (this.discrete) {
        for (let i = n - 1; i >= 0; i--) ctx.lineTo(X(i), Y(base[i]));
        ctx.closePath();
        ctx.fillStyle = this.colour(s.key);
        ctx.fill();
      } else {
        ctx.strokeStyle = th.line;
        ctx.lineWidth = 1.5;
        ctx.stroke();
        ctx.lineTo(X(n - 1), Y(0));
        ctx.lineTo(X(0), Y(0));
        ctx.closePath();
        ctx.fillStyle = th.fill;
        ctx.fill();
      }
      top.forEach((v, i) => { base[i] = v; });
    }
    c.dataset.start = n ? pts[0].start_time : '';
    c.dataset.end = n ? pts[n - 1].end_time : '';
    this.drawLegend(ser);
  }

  drawLegend(ser) {
    if (!this.discrete) {
      fill(this.legend);
      return;
    }
    fill(this.legend,
      ser.length ? ser.map((s) => h('li', { dataset: { key: s.key } },
        h('span.swatch', { style: { background: this.colour(s.key) } }),
        h('span.key', s.key), h('span.muted', ` ${fmtCount(s.total)}`)))
        : h('li.muted', 'no data in this interval'));
  }

  hover(e) {
    if (!this.shown || !this.shown.pts.length) return;
    const { pts, ser, X } = this.shown;
    const r = this.canvas.getBoundingClientRect();
    const x = ((e.clientX - r.left) * this.canvas.width) / r.width;
    let best = 0;
    for (let i = 1; i < pts.length; i++) if (Math.abs(X(i) - x) < Math.abs(X(best) - x)) best = i;
    const unit = this.panel.metric && this.panel.metric.unit ? ` ${this.panel.metric.unit}` : '';
    // the keys of that second, biggest first ("other" last), each with its colour
    const here = ser.filter((s) => !this.discrete || s.values[best] > 0)
      .sort((a, b) => (a.key === OTHER) - (b.key === OTHER) || b.values[best] - a.values[best]);
    const lines = here.map((s) => (this.discrete
      ? h('div.tip-key', { dataset: { key: s.key } },
        h('span.swatch', { style: { background: this.colour(s.key) } }),
        h('span.key', s.key), h('span.tip-n', fmtCount(s.values[best])))
      : h('div.tip-key', `${fmtNumber(s.values[best])}${unit}`)));
    const total = here.reduce((t, s) => t + s.values[best], 0);
    const span = pts[pts.length - 1].end_time - pts[0].start_time;
    fill(this.tip, h('div.tip-time', fmtWhen(pts[best].start_time, span)),
      lines.length ? lines : h('div.muted', 'nothing'),
      this.discrete && here.length > 1 ? h('div.tip-key.muted', h('span', 'total'), h('span.tip-n', fmtCount(total))) : null);
    this.tip.hidden = false;
    const scale = r.width / this.canvas.width;
    this.tip.style.left = `${Math.max(0, Math.min(X(best) * scale + 12, r.width - 190))}px`;
    this.tip.style.top = `${M.top}px`;
  }
}
