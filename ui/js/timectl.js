// What time every panel shows, one shared state so that panels stay aligned (they listen for
// its "change" event):
//   - a range ending now: 1 min and 5 min are live (each panel asks once per granularity and
//     the server holds the request until the slot is complete); 1 h, 6 h, 24 h, 7 d and 30 d
//     are history, asked with their start_time and duration and asked again every column's
//     granularity or 10 s, whichever is longer;
//   - paused: a range ending now, frozen; every panel shows the interval ending where the
//     newest panel was when Pause was pressed (frozenEnd), not each its own last second;
//   - custom: a fixed interval (start, duration), typed in the time bar or dragged across a
//     heatmap (zoom); Back returns to the view before the zoom.
//
// The state goes into a page's URL and back (toQuery/fromQuery): t=SECONDS (a range ending
// now), with at=END when paused (a Unix second), or from=START&len=SECONDS (custom).
//
// Custom times are typed as "YYYY-MM-DD HH:MM:SS", local time on a 24-hour clock: the clock
// the axes use (a datetime-local input would follow the browser's locale, on a 12-hour clock
// in many).

import { fill, h } from './dom.js';
import { fmtClock, toLocalInput } from './units.js';

// The ranges of the bar: [seconds, label]; those up to LIVE_MAX are live.
export const RANGES = [[60, '1 min'], [300, '5 min'], [3600, '1 h'], [21600, '6 h'],
  [86400, '24 h'], [604800, '7 d'], [2592000, '30 d']];
const LIVE_MAX = 300;
export const MAX_LEN = 3650 * 86400; // the longest interval asked: the coarsest tier's 10 years
const HISTORY_MIN_MS = 10_000; // history ranges are asked again at most this often
const BACK_MAX = 20; // views Back can return to

// "YYYY-MM-DD HH:MM:SS" (or with a T, or without seconds), local time → a Unix second, or NaN.
export function parseLocal(text) {
  const m = /^\s*(\d{4})-(\d\d)-(\d\d)[ T](\d\d?):(\d\d)(?::(\d\d))?\s*$/.exec(text || '');
  if (!m) return NaN;
  const [y, mo, d, hh, mm, ss] = m.slice(1).map((x) => Number(x || 0));
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 59) return NaN;
  return Math.floor(new Date(y, mo - 1, d, hh, mm, ss).getTime() / 1000);
}
const showLocal = (sec) => toLocalInput(sec).replace('T', ' ');
const nowSec = () => Math.floor(Date.now() / 1000);

class TimeState extends EventTarget {
  constructor() {
    super();
    this.mode = 'live'; // 'live' (a range ending now) | 'window' (custom)
    this.range = 60; // live: seconds shown
    this.paused = false;
    this.frozenEnd = 0; // paused: the end of every panel's interval
    this.lastEnd = 0; // the newest end of data any panel has shown (the server's clock)
    this.skew = -1; // the server's newest complete second minus our clock's second
    this.start = 0; // custom: Unix second of its start
    this.duration = 60; // custom: seconds
    this.backStack = []; // the views before each zoom, newest last
  }

  set(patch) {
    if (patch.paused && !this.paused) this.frozenEnd = this.lastEnd || this.clock() + 1;
    Object.assign(this, patch);
    this.dispatchEvent(new Event('change'));
  }

  // The views Back returns to are forgotten (a range or interval chosen in the bar).
  choose(patch) {
    this.backStack = [];
    this.set(patch);
  }

  // Shows [start, start + duration) as a custom interval; Back returns to the view shown now.
  zoom(start, duration) {
    const { mode, range, paused, frozenEnd } = this;
    this.backStack.push({ mode, range, paused, frozenEnd, start: this.start, duration: this.duration });
    if (this.backStack.length > BACK_MAX) this.backStack.shift();
    this.set({ mode: 'window', paused: false, start, duration: Math.max(1, Math.min(MAX_LEN, duration)) });
  }

  back() {
    const prev = this.backStack.pop();
    if (prev) this.set(prev);
  }

  // A panel showed data up to end (a Unix second, the end of its last slot); live: the
  // server chose it (its latest complete slot, by its clock).
  noteEnd(end, live) {
    if (end > this.lastEnd) this.lastEnd = end;
    if (live) this.skew = end - 1 - nowSec();
  }

  // The server's newest complete second as far as the page knows: our clock, corrected by
  // what the last live answer said.
  clock() {
    return nowSec() + this.skew;
  }

  // The newest second shown or known.
  now() {
    return Math.max(this.lastEnd, this.clock());
  }

  // The state as URL parameters (an object of strings).
  toQuery() {
    if (this.mode === 'window') return { from: String(this.start), len: String(this.duration) };
    const q = { t: String(this.range) };
    if (this.paused && this.frozenEnd) q.at = String(this.frozenEnd);
    return q;
  }

  // Takes the state a URL's parameters (a URLSearchParams) name, if they name one; true when
  // they did.
  fromQuery(q) {
    const num = (k) => (q.has(k) && /^\d{1,12}$/.test(q.get(k)) ? Number(q.get(k)) : null);
    const from = num('from'), len = num('len'), t = num('t'), at = num('at');
    if (from !== null && len !== null && len > 0 && len <= MAX_LEN) {
      this.backStack = [];
      this.set({ mode: 'window', paused: false, start: from, duration: len });
      return true;
    }
    if (t !== null && RANGES.some(([r]) => r === t)) {
      this.backStack = [];
      if (at) this.set({ mode: 'live', range: t, paused: true, frozenEnd: at });
      else this.set({ mode: 'live', range: t, paused: false });
      return true;
    }
    return false;
  }

  // Whether panels should fetch again by themselves.
  get following() {
    return this.mode === 'live' && !this.paused;
  }

  // Whether they follow the clock slot by slot, the server holding each request until its
  // slot is complete (the live ranges); else a range is asked again every refreshMs().
  get livePoll() {
    return this.following && this.range <= LIVE_MAX;
  }

  // How long a history range waits before it is asked again, for columns of g seconds.
  refreshMs(g) {
    return Math.max(HISTORY_MIN_MS, g * 1000);
  }

  // The length of the interval shown, in seconds.
  get span() {
    return this.mode === 'window' ? this.duration : this.range;
  }

  // The interval parameters of a request whose columns (points) are g seconds: live ones
  // leave the end to the server (its latest complete slot); the others name their start and
  // duration (multiples of g).
  params(g) {
    const span = (s) => Math.max(g, Math.ceil(s / g) * g);
    if (this.mode === 'window') return { start_time: Math.floor(this.start / g) * g, duration: span(this.duration) };
    const d = span(this.range);
    if (this.paused && this.frozenEnd) return { start_time: Math.floor(this.frozenEnd / g) * g - d, duration: d };
    if (this.range <= LIVE_MAX) return { duration: d };
    return { start_time: Math.floor((this.clock() + 1) / g) * g - d, duration: d };
  }
}

export const time = new TimeState();

// The bar of time controls. One for the page: views re-attach it, so it never falls out of
// step with the state.
let bar = null;
export function timeBar() {
  if (bar) return bar;
  const ranges = RANGES.map(([r, label]) => {
    const b = h('button.seg', { type: 'button', dataset: { range: r },
      title: r <= LIVE_MAX ? `the last ${label}, live` : `the last ${label}, from the history` }, label);
    b.onclick = () => time.choose({ mode: 'live', range: r, paused: false });
    return b;
  });
  const custom = h('button.seg', { type: 'button', dataset: { range: 'custom' } }, 'Custom');
  const pause = h('button.pause', { type: 'button' }, 'Pause');
  const back = h('button.back.small', { type: 'button', title: 'the view before the last zoom' }, '← Back');
  const input = (name, label) => h('input.custom-time', { type: 'text', name, inputMode: 'numeric',
    placeholder: 'YYYY-MM-DD HH:MM:SS', size: 19, spellcheck: false, autocomplete: 'off',
    'aria-label': `${label}, local time, 24-hour clock`, title: 'local time, 24-hour clock' });
  const from = input('custom-from', 'from');
  const to = input('custom-to', 'to');
  const show = h('button.small', { type: 'button', name: 'custom-show' }, 'Show');
  const customBox = h('span.custom-box', h('label', 'from ', from), h('label', ' to ', to), show,
    h('span.muted.small-note', 'local time'));
  // paused: said for the whole page, not only by the button's word
  const badge = h('span.paused-badge', { role: 'status', hidden: true });

  // an interval must end by the newest complete second: later ones are in the future
  const pick = (s, e) => {
    const end = Math.min(e, time.clock() + 1);
    if (!(end > s)) return false;
    time.choose({ mode: 'window', paused: false, start: s, duration: Math.min(MAX_LEN, end - s) });
    return true;
  };
  const sync = () => {
    for (const b of ranges)
      b.setAttribute('aria-pressed', String(time.mode === 'live' && time.range === Number(b.dataset.range)));
    custom.setAttribute('aria-pressed', String(time.mode === 'window'));
    customBox.hidden = time.mode !== 'window';
    pause.hidden = time.mode !== 'live';
    pause.textContent = time.paused ? 'Resume' : 'Pause';
    pause.setAttribute('aria-pressed', String(time.paused));
    back.hidden = !time.backStack.length;
    if (time.mode === 'window') {
      for (const [el, t] of [[from, time.start], [to, time.start + time.duration]]) {
        if (document.activeElement !== el) el.value = showLocal(t);
        el.classList.remove('bad');
      }
    }
    const paused = time.mode === 'live' && time.paused;
    badge.hidden = !paused;
    if (paused) fill(badge, h('span.pause-icon', { 'aria-hidden': 'true' }), `Paused at ${fmtClock(time.frozenEnd || time.now())}`);
    document.body.classList.toggle('is-paused', paused);
  };
  // Custom opens on the interval shown now
  custom.onclick = () => {
    if (time.mode === 'window') return;
    const d = time.range, end = time.paused && time.frozenEnd ? time.frozenEnd : time.clock() + 1;
    pick(end - d, end);
  };
  const showCustom = () => {
    const s = parseLocal(from.value), e = parseLocal(to.value);
    const sBad = !Number.isFinite(s), eBad = !Number.isFinite(e) || (!sBad && !(e > s));
    from.classList.toggle('bad', sBad);
    to.classList.toggle('bad', eBad);
    if (!sBad && !eBad) pick(s, e);
  };
  show.onclick = showCustom;
  for (const el of [from, to]) {
    el.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') showCustom();
    });
  }
  pause.onclick = () => time.set({ paused: !time.paused });
  back.onclick = () => time.back();
  time.addEventListener('change', sync);
  sync();
  bar = h('div.timebar', { role: 'toolbar', 'aria-label': 'time' },
    h('span.seg-group.range-group', ranges, custom), customBox, pause, back, badge);
  return bar;
}
