// What time every panel shows: live (the last 60 s or 10 min, following the clock) or a chosen
// window, and whether live panels are paused. One shared state, so panels stay aligned;
// panels listen for its "change" event.
//
// Paused panels all show the interval ending where the newest panel was when Pause was
// pressed (frozenEnd), not each its own last second.

import { h } from './dom.js';
import { toLocalInput } from './units.js';

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
  const start = h('input', { type: 'datetime-local', step: 1, name: 'window-start',
    'aria-label': 'window start' });
  const dur = h('select', { name: 'window-duration', 'aria-label': 'window length' },
    [[60, '1 min'], [300, '5 min'], [600, '10 min'], [1800, '30 min'], [3600, '1 h']].map(
      ([v, t]) => h('option', { value: v }, t)));
  const show = h('button.small', { type: 'button' }, 'Show');
  const winBox = h('span.window-box', start, dur, show);

  // a window must end by the newest complete second: later ones are in the future
  const pick = (t, d) => {
    const latest = time.now();
    const s = Math.min(t, latest - d);
    start.value = toLocalInput(s);
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
      start.value = toLocalInput(time.start);
      dur.value = String(time.duration);
    }
  };
  live60.onclick = () => time.set({ mode: 'live', range: 60, paused: false });
  live600.onclick = () => time.set({ mode: 'live', range: 600, paused: false });
  win.onclick = () => {
    const d = Number(dur.value);
    pick(start.value ? Math.floor(new Date(start.value) / 1000) : time.now() - d, d);
  };
  show.onclick = () => {
    const t = Math.floor(new Date(start.value) / 1000);
    if (Number.isFinite(t)) pick(t, Number(dur.value));
  };
  pause.onclick = () => time.set({ paused: !time.paused });
  time.addEventListener('change', sync);
  sync();
  bar = h('div.timebar', { role: 'toolbar', 'aria-label': 'time' },
    h('span.seg-group', live60, live600, win), winBox, pause);
  return bar;
}
