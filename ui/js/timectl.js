// What time every panel shows: live (the last 60 s or 10 min, following the clock) or a chosen
// window, and whether live panels are paused. One shared state, so panels stay aligned;
// panels listen for its "change" event.
//
// Paused panels all show the interval ending where the newest panel was when Pause was
// pressed (frozenEnd), not each its own last second.
//
// The state goes into a page's URL and back (toQuery/fromQuery): t=60 or t=600 (live),
// with at=END when paused (a Unix second), or from=START&len=SECONDS (a window).
//
// A window's start is typed as "YYYY-MM-DD HH:MM:SS", local time on a 24-hour clock: the
// clock the axes use (a datetime-local input would follow the browser's locale, on a 12-hour
// clock in many).

import { fill, h } from './dom.js';
import { fmtClock, toLocalInput } from './units.js';

const RANGES = [60, 600];
const LENGTHS = [[60, '1 min'], [300, '5 min'], [600, '10 min'], [1800, '30 min'], [3600, '1 h']];

// "YYYY-MM-DD HH:MM:SS" (or with a T, or without seconds), local time → a Unix second, or NaN.
export function parseLocal(text) {
  const m = /^\s*(\d{4})-(\d\d)-(\d\d)[ T](\d\d?):(\d\d)(?::(\d\d))?\s*$/.exec(text || '');
  if (!m) return NaN;
  const [y, mo, d, hh, mm, ss] = m.slice(1).map((x) => Number(x || 0));
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 59) return NaN;
  return Math.floor(new Date(y, mo - 1, d, hh, mm, ss).getTime() / 1000);
}
const showLocal = (sec) => toLocalInput(sec).replace('T', ' ');

class TimeState extends EventTarget {
  constructor() {
    super();
    this.mode = 'live'; // 'live' | 'window'
    this.range = 60; // live: seconds shown
    this.paused = false;
    this.frozenEnd = 0; // paused: the end of every panel's interval
    this.lastEnd = 0; // the newest end of data any panel has shown (the server's clock)
    this.start = 0; // window: Unix second of its start
    this.duration = 60; // window: seconds
  }

  set(patch) {
    if (patch.paused && !this.paused) this.frozenEnd = this.lastEnd;
    Object.assign(this, patch);
    this.dispatchEvent(new Event('change'));
  }

  // A panel showed data up to end (a Unix second of the server's).
  noteEnd(end) {
    if (end > this.lastEnd) this.lastEnd = end;
  }

  // The server's "now" as far as the page knows: the newest data seen, else our clock.
  now() {
    return this.lastEnd || Math.floor(Date.now() / 1000) - 1;
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
    if (from !== null && len !== null && len > 0 && len <= 3600) {
      this.set({ mode: 'window', paused: false, start: from, duration: len });
      return true;
    }
    if (t !== null && RANGES.includes(t)) {
      if (at) this.set({ mode: 'live', range: t, paused: true, frozenEnd: at });
      else this.set({ mode: 'live', range: t, paused: false });
      return true;
    }
    return false;
  }

  // Whether panels should fetch on their own each granularity.
  get following() {
    return this.mode === 'live' && !this.paused;
  }

  // The interval parameters of a request for granularity g: live ones leave the end to the
  // server (its latest complete slot); paused ones and windows name their start.
  params(g) {
    const span = (s) => Math.max(g, Math.ceil(s / g) * g);
    if (this.mode === 'window') return { start_time: Math.floor(this.start / g) * g, duration: span(this.duration) };
    if (this.paused && this.frozenEnd) {
      const d = span(this.range);
      return { start_time: Math.floor(this.frozenEnd / g) * g - d, duration: d };
    }
    return { duration: span(this.range) };
  }
}

export const time = new TimeState();

// The bar of time controls. One for the page: views re-attach it, so it never falls out of
// step with the state.
let bar = null;
export function timeBar() {
  if (bar) return bar;
  const live60 = h('button.seg', { type: 'button', dataset: { range: 60 } }, 'Live 60 s');
  const live600 = h('button.seg', { type: 'button', dataset: { range: 600 } }, 'Live 10 min');
  const win = h('button.seg', { type: 'button', dataset: { range: 'window' } }, 'Window');
  const pause = h('button.pause', { type: 'button' }, 'Pause');
  const start = h('input.window-start', { type: 'text', name: 'window-start', inputMode: 'numeric',
    placeholder: 'YYYY-MM-DD HH:MM:SS', size: 19, spellcheck: false, autocomplete: 'off',
    'aria-label': 'window start, local time, 24-hour clock', title: 'local time, 24-hour clock' });
  const dur = h('select', { name: 'window-duration', 'aria-label': 'window length' },
    LENGTHS.map(([v, t]) => h('option', { value: v }, t)));
  const show = h('button.small', { type: 'button' }, 'Show');
  const winBox = h('span.window-box', start, dur, show);
  // paused: said for the whole page, not only by the button's word
  const badge = h('span.paused-badge', { role: 'status', hidden: true });

  // a window must end by the newest complete second: later ones are in the future
  const pick = (t, d) => {
    const latest = time.now();
    const s = Math.min(t, latest - d);
    start.value = showLocal(s);
    start.classList.remove('bad');
    time.set({ mode: 'window', paused: false, start: s, duration: d });
  };
  const sync = () => {
    live60.setAttribute('aria-pressed', String(time.mode === 'live' && time.range === 60));
    live600.setAttribute('aria-pressed', String(time.mode === 'live' && time.range === 600));
    win.setAttribute('aria-pressed', String(time.mode === 'window'));
    winBox.hidden = time.mode !== 'window';
    pause.hidden = time.mode !== 'live';
    pause.textContent = time.paused ? 'Resume' : 'Pause';
    pause.setAttribute('aria-pressed', String(time.paused));
    if (time.mode === 'window') {
      if (document.activeElement !== start) start.value = showLocal(time.start);
      if (!LENGTHS.some(([v]) => v === time.duration))
        dur.append(h('option', { value: time.duration }, `${time.duration} s`));
      dur.value = String(time.duration);
    }
    const paused = time.mode === 'live' && time.paused;
    badge.hidden = !paused;
    if (paused) fill(badge, h('span.pause-icon', { 'aria-hidden': 'true' }), `Paused at ${fmtClock(time.frozenEnd || time.now())}`);
    document.body.classList.toggle('is-paused', paused);
  };
  live60.onclick = () => time.set({ mode: 'live', range: 60, paused: false });
  live600.onclick = () => time.set({ mode: 'live', range: 600, paused: false });
  win.onclick = () => {
    const d = Number(dur.value);
    const t = parseLocal(start.value);
    pick(Number.isFinite(t) ? t : time.now() - d, d);
  };
  const showWindow = () => {
    const t = parseLocal(start.value);
    start.classList.toggle('bad', !Number.isFinite(t));
    if (Number.isFinite(t)) pick(t, Number(dur.value));
  };
  show.onclick = showWindow;
  start.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') showWindow();
  });
  pause.onclick = () => time.set({ paused: !time.paused });
  time.addEventListener('change', sync);
  sync();
  bar = h('div.timebar', { role: 'toolbar', 'aria-label': 'time' },
    h('span.seg-group', live60, live600, win), winBox, pause, badge);
  return bar;
}
