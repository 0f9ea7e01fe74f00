// A live panel of one instrumentation: its title, what it counts, clone and delete (and the
// view's own actions: a heatmap's "Trigger…"), and its
// view (a heatmap when it has a numeric decomposition, else a chart), refreshed each
// granularity while time is live, every column's granularity or 10 s (the longer) for a range
// of history ending now, once per change otherwise. It says which resolution it shows (the
// reply's "granularity" and "tier": the server answers from the finest stored tier that fits).
// Errors from the server are shown in words in the panel; a panel whose instrumentation is
// gone says so and stops.
//
// A panel's view state (a heatmap's selected keys, mode, y scale and range) can be read and
// set (viewState/applyState), for URLs and dashboards; onChange is told when it may have
// changed.

import { ApiError, OfflineError, base, call } from './api.js';
import { instTitle, metricOf, predText } from './catalog.js';
import { ChartView } from './charts.js';
import { fill, h } from './dom.js';
import { HeatmapView } from './heatmap.js';
import { time } from './timectl.js';
import { fmtGran, fmtInput, fmtSeconds, fmtWhen } from './units.js';

const MODES = ['isolate', 'exclude', 'decompose_all'];

export class Panel {
  // hooks: onGone(panel, why), onCloned(inst), and optionally onChange(panel) (its view state
  // may have changed) and actions (more elements for the panel's header).
  constructor(cat, inst, { onGone, onCloned, onChange, actions }) {
    this.cat = cat;
    this.inst = inst;
    this.metric = metricOf(cat, inst.module, inst.stat);
    this.path = `/instrumentations/${encodeURIComponent(inst.id)}`;
    this.onGone = onGone;
    this.onChange = onChange || null;
    this.running = false;
    this.dirty = true;
    this.wakeUp = null;
    const arity = inst['value-arity'];
    this.view = arity === 'numeric-decomposition' ? new HeatmapView(this)
      : new ChartView(this, arity === 'discrete-decomposition');

    this.status = h('span.panel-status', { 'aria-live': 'off' }, 'waiting for data…');
    this.error = h('p.panel-error.error', { role: 'alert', hidden: true });
    this.retNote = h('p.ret-note.muted', { hidden: true });
    // the resolution shown: "1 min resolution", from the reply
    this.res = h('span.panel-res', { title: 'the time each column or point covers' });
    this.resBox = h('span.muted', { hidden: true }, ' · ', this.res);
    const pred = predText(inst.predicate);
    const perG = inst.granularity === 1 ? 'per second' : `per ${inst.granularity} s`;
    const clone = h('button.small', { type: 'button', title: 'a copy of this instrumentation' }, 'Clone');
    const del = h('button.small.danger', { type: 'button' }, 'Delete');
    clone.onclick = async () => {
      try {
        const c = await call('POST', `${this.path}/clone`, { body: {} });
        onCloned(c);
      } catch (e) {
        this.showError(`Not cloned: ${e.message}`);
      }
    };
    del.onclick = async () => {
      if (!window.confirm(`Delete instrumentation ${inst.id} (${instTitle(cat, inst)})?`)) return;
      this.stop(); // nothing of this panel's in flight meets the delete
      try {
        await call('DELETE', this.path);
        onGone(this, 'deleted');
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) {
          onGone(this, 'gone');
        } else {
          this.showError(`Not deleted: ${e.message}`);
          this.start();
        }
      }
    };
    this.el = h('article.panel', { dataset: { id: inst.id }, id: `panel-${inst.id}` },
      h('header.panel-head',
        h('div',
          h('h2', instTitle(cat, inst)),
          h('div.panel-meta',
            h('code', `#${inst.id}`),
            pred ? h('span', ` where ${pred}`) : null,
            h('span.muted', ` · ${this.metric && this.metric.unit ? `${this.metric.unit} ` : ''}${perG}`),
            h('span.muted', ` · keeps ${fmtSeconds(inst['retention-time'])}`),
            h('span.muted', inst['persist-data'] ? ' · history kept' : ''),
            this.resBox)),
        h('div.panel-actions', this.status, actions || null, this.view.actions || null, clone, del)),
      inst.warnings ? h('p.warning', inst.warnings.join('; ')) : null,
      this.error,
      this.retNote,
      this.view.el);
    // a change of time stops what is in flight (what it would draw is no longer asked for)
    this.onTime = () => {
      if (this.abort) this.abort.abort();
      this.kick();
    };
    this.defaults = this.viewState();
    // a panel made wider or narrower (the window, a dashboard's cell) is drawn again to fit,
    // even when time stands still
    this.width = 0;
    this.resized = null;
    if (window.ResizeObserver) {
      this.resized = new ResizeObserver(() => {
        const w = this.el.clientWidth;
        if (!w || Math.abs(w - this.width) < 24) return;
        const first = !this.width;
        this.width = w;
        if (first || !this.running) return;
        clearTimeout(this.resizeTimer);
        this.resizeTimer = setTimeout(() => {
          this.dirty = true;
          this.wake();
        }, 250);
      });
    }
  }

  get heatmap() {
    return this.view instanceof HeatmapView;
  }

  // What a heatmap panel draws, as plain data: {yscale, ymin, ymax (null: auto), selected,
  // mode (null: none)}; {} for a chart.
  viewState() {
    if (!this.heatmap) return {};
    const v = this.view;
    return { yscale: v.yscale, ymin: v.ymin, ymax: v.auto ? null : v.ymax,
      selected: [...v.selected], mode: v.mode, coloring: v.coloring };
  }

  // The members of viewState() that differ from the panel's defaults.
  changedState() {
    const now = this.viewState(), out = {};
    for (const [k, v] of Object.entries(now))
      if (JSON.stringify(v) !== JSON.stringify(this.defaults[k])) out[k] = v;
    return out;
  }

  // Sets what a heatmap panel draws (members absent are left as they are; values that do not
  // fit are ignored), and draws it.
  applyState(o) {
    if (!this.heatmap || !o) return;
    const v = this.view;
    if (o.yscale === 'log' || o.yscale === 'linear') {
      v.yscale = o.yscale;
      v.scaleIn.value = o.yscale;
    }
    if (Number.isFinite(o.ymin) && o.ymin >= 0) {
      v.ymin = o.ymin;
      v.yminIn.value = fmtInput(o.ymin, v.type);
    }
    if (o.ymax === null || (Number.isFinite(o.ymax) && o.ymax > v.ymin)) {
      v.auto = o.ymax === null;
      v.ymax = o.ymax;
      v.autoIn.checked = v.auto;
      v.ymaxIn.disabled = v.auto;
      v.ymaxIn.value = v.auto ? '' : fmtInput(o.ymax, v.type);
    }
    if (Array.isArray(o.selected))
      v.selected = o.selected.filter((k) => typeof k === 'string' && !k.includes(',')).slice(0, 63);
    if (o.mode === null || MODES.includes(o.mode)) v.mode = v.keyField ? o.mode : null;
    if (o.coloring === 'linear' || o.coloring === 'rank') {
      v.coloring = o.coloring;
      v.colorIn.value = o.coloring;
    }
    v.changed();
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.dirty = true;
    time.addEventListener('change', this.onTime);
    if (this.resized) this.resized.observe(this.el);
    if (this.view.start) this.view.start();
    this.loop();
  }

  stop() {
    this.running = false;
    time.removeEventListener('change', this.onTime);
    if (this.resized) this.resized.disconnect();
    clearTimeout(this.resizeTimer);
    if (this.abort) this.abort.abort();
    if (this.view.hideTip) this.view.hideTip();
    if (this.view.stop) this.view.stop();
    this.kick();
  }

  // Draw again now (a control changed, or the time did).
  kick() {
    this.dirty = true;
    this.wake();
    if (this.onChange) this.onChange(this);
  }

  // Let the loop look again at whether there is anything to do (the page became visible).
  wake() {
    if (this.wakeUp) this.wakeUp();
  }

  nap(ms) {
    return new Promise((r) => {
      const t = ms === Infinity ? null : setTimeout(r, ms);
      this.wakeUp = () => {
        clearTimeout(t);
        r();
      };
    });
  }

  showError(msg) {
    this.error.textContent = msg;
    this.error.hidden = !msg;
  }

  interval() {
    if (time.mode === 'live' && time.paused && !time.frozenEnd && this.view.interval) return this.view.interval;
    return time.params(this.view.align(time.span));
  }

  // Why an interval that names its start cannot be shown any more, or null. History kept
  // (persist-data) is there for years: the server says when it is not.
  expired(iv) {
    if (iv.start_time === undefined || this.inst['persist-data']) return null;
    const keep = this.inst['retention-time'];
    if (iv.start_time + iv.duration > time.now() - keep) return null;
    return `this interval is older than the retention (${fmtSeconds(keep)}): the server no longer has its data`;
  }

  async loop() {
    while (this.running) {
      // nothing to do: time stands still and nothing changed, or nobody can see the page
      // (a hidden tab asks nothing of the server; showing it again kicks every panel)
      if ((!time.following && !this.dirty) || document.hidden) {
        await this.nap(Infinity);
        continue;
      }
      this.dirty = false;
      this.abort = new AbortController();
      const iv = this.interval();
      const gone = this.expired(iv);
      if (gone) { // keep what is drawn, and say why nothing newer comes
        this.showError(gone);
        continue;
      }
      try {
        const live = time.livePoll && iv.start_time === undefined;
        const extra = { timeout: live ? 2000 : 0 };
        const pt = await this.view.refresh(iv, extra, this.abort.signal);
        this.showError('');
        // a range longer than the retention is partly blank (without history): say why
        const keep = this.inst['retention-time'];
        this.retNote.hidden = !(iv.duration > keep) || !!this.inst['persist-data'];
        this.retNote.textContent = `This instrumentation keeps ${fmtSeconds(keep)}: older seconds are blank.`;
        this.showResolution(pt);
        time.noteEnd(pt.end_time, live);
        this.el.dataset.updated = String(pt.end_time);
        const src = `${pt.nsources} ${pt.nsources === 1 ? 'source' : 'sources'}`;
        const paused = time.mode === 'live' && time.paused;
        fill(this.status, time.following ? h('span.live-dot', { title: 'live' }) : null,
          paused ? h('span.paused-tag', 'paused') : null,
          `${paused ? ' at' : 'to'} ${fmtWhen(pt.end_time, iv.duration)} · ${src}`,
          pt.delay ? ` · waited ${pt.delay} ms` : '');
      } catch (e) {
        if (e.name === 'AbortError') continue;
        if (e instanceof OfflineError) {
          fill(this.status, 'waiting for the server…');
          this.dirty = true;
        } else if (e instanceof ApiError && e.status === 404) {
          this.stop();
          this.onGone(this, 'gone');
          return;
        } else {
          this.showError(e.message);
          // the same question gets the same answer: live panels ask again in a while (a
          // range of history at its pace), a custom interval or a paused view waits for a
          // change
          this.dirty = time.following;
          await this.nap(time.livePoll ? 2000 : time.refreshMs(this.shownGran || this.inst.granularity));
          continue;
        }
      }
      if (time.livePoll) {
        // the next slot's data, asked just after the slot ends; the server waits for it
        // if it is late
        const g = this.inst.granularity * 1000, now = Date.now();
        await this.nap(Math.max(200, g - (now % g) + 30));
      } else if (time.following) {
        // history ending now: asked again once a column may have filled
        await this.nap(time.refreshMs(this.shownGran || this.inst.granularity));
      }
    }
  }

  // The resolution of what pt (the reply drawn) shows: its "granularity" (seconds a column or
  // point covers) and "tier" ("raw", "1m", "1h", "1d"). A server without a store says
  // neither: then a heatmap's columns are the instrumentation's granularity, a chart's points
  // the step it asked.
  showResolution(pt) {
    const g = Number(pt.granularity) > 0 ? Number(pt.granularity) : this.view.gran(pt);
    const tier = typeof pt.tier === 'string' ? pt.tier : '';
    this.shownGran = g;
    this.res.textContent = `${fmtGran(g)} resolution`;
    this.resBox.hidden = false;
    this.res.title = `each ${this.heatmap ? 'column' : 'point'} covers ${fmtGran(g)}` +
      (tier ? `, read from the ${tier === 'raw' ? 'raw data' : `${tier} rollups`}` : '');
    this.el.dataset.granularity = String(g);
    this.el.dataset.tier = tier;
  }

  // A link target for this panel's raw data, for people who want the JSON.
  get rawUrl() {
    return `${base()}${this.path}/value/raw`;
  }
}
