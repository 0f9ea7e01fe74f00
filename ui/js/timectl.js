// What time every panel shows: live (the last 60 s or 10 min, following the clock) or a chosen
// window, and whether live panels are paused. One shared state, so panels stay aligned;
// panels listen for its "change" event.

import { h } from './dom.js';
import { toLocalInput } from './units.js';

class TimeState extends EventTarget {
  constructor() {
    super();
    this.mode = 'live'; // 'live' | 'window'
    this.range = 60; // live: seconds shown
    this.paused = false;
    this.start = 0; // window: Unix second of its start
    this.duration = 60; // window: seconds
  }

  set(patch) {
    Object.assign(this, patch);
    this.dispatchEvent(new Event('change'));
  }

  // Whether panels should fetch on their own each second.
  get following() {
    return this.mode === 'live' && !this.paused;
  }

  // The interval parameters of a request for granularity g: live ones leave the end to the
  // server (its latest complete slot); a window names its start.
  params(g) {
    if (this.mode === 'live') return { duration: Math.max(g, Math.ceil(this.range / g) * g) };
    return { start_time: this.start, duration: Math.max(g, Math.ceil(this.duration / g) * g) };
  }
}

export const time = new TimeState();

// The bar of time controls.
export function timeBar() {
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

  const sync = () => {
    live60.setAttribute('aria-pressed', time.mode === 'live' && time.range === 60);
    live600.setAttribute('aria-pressed', time.mode === 'live' && time.range === 600);
    win.setAttribute('aria-pressed', time.mode === 'window');
    winBox.hidden = time.mode !== 'window';
    pause.hidden = time.mode !== 'live';
    pause.textContent = time.paused ? 'Resume' : 'Pause';
    pause.setAttribute('aria-pressed', time.paused);
  };
  live60.onclick = () => time.set({ mode: 'live', range: 60, paused: false });
  live600.onclick = () => time.set({ mode: 'live', range: 600, paused: false });
  win.onclick = () => {
    if (!start.value) start.value = toLocalInput(Math.floor(Date.now() / 1000) - 300);
    time.set({ mode: 'window', paused: false, start: Math.floor(new Date(start.value) / 1000),
      duration: Number(dur.value) });
  };
  show.onclick = () => {
    const t = Math.floor(new Date(start.value) / 1000);
    if (Number.isFinite(t)) time.set({ mode: 'window', start: t, duration: Number(dur.value) });
  };
  pause.onclick = () => time.set({ paused: !time.paused });
  time.addEventListener('change', sync);
  sync();
  return h('div.timebar', { role: 'toolbar', 'aria-label': 'time' },
    h('span.seg-group', live60, live600, win), winBox, pause);
}
