// Human units for values of the catalog's types (describe's "types": unit, abbr, base,
// power): nanoseconds become µs/ms/s, bytes KiB/MiB/GiB, plain numbers k/M/G. Pure functions,
// shared by every view and tested under Node (tests/ui/units.test.mjs).

const SECONDS = [
  [1e-9, 'ns'],
  [1e-6, 'µs'],
  [1e-3, 'ms'],
  [1, 's'],
];

// Three significant digits, without trailing zeros: 1.50 → "1.5", 123.4 → "123".
export function sig3(x) {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  const digits = a >= 100 ? 0 : a >= 10 ? 1 : 2;
  return String(Number(x.toFixed(digits)));
}

// A duration in seconds: "750 ns", "1.2 µs", "3.45 ms", "2 s", "1m 30s", "2h 5m".
export function fmtSeconds(s) {
  if (!Number.isFinite(s)) return '–';
  if (s === 0) return '0';
  const a = Math.abs(s);
  if (a >= 60) {
    const sign = s < 0 ? '-' : '';
    const t = Math.round(a);
    const h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), sec = t % 60;
    return sign + (h ? `${h}h ${m}m` : sec ? `${m}m ${sec}s` : `${m}m`);
  }
  let unit = SECONDS[0];
  for (const u of SECONDS) if (a >= u[0] * 0.9995) unit = u;
  return `${sig3(s / unit[0])} ${unit[1]}`;
}

// A duration in one unit, for axes, ranges and values of fields: ns, µs, ms and s up to
// 1000 s ("100 s", not "1m 40s"), then minutes ("16.7 min") up to 100, then hours ("2.5 h").
export function fmtDuration(s) {
  if (!Number.isFinite(s)) return '–';
  const a = Math.abs(s);
  if (a < 999.5) return a >= 60 ? `${sig3(s)} s` : fmtSeconds(s);
  if (a < 5999.5) return `${sig3(s / 60)} min`;
  return `${sig3(s / 3600)} h`;
}

// The labels of an axis's ticks (values of a field of type t): on a linear axis of
// durations one unit for all, the one fmtDuration gives the largest ("0", "600 s"... would
// read badly: "10 min", "20 min"); on a log axis, or of other quantities, each its own.
export function fmtTicks(vals, t, log = false) {
  if (log || !t || t.unit !== 'seconds' || !vals.length) return vals.map((v) => fmtValue(v, t));
  const f = Math.pow(t.base || 10, t.power || 0);
  const top = Math.max(...vals.map((v) => Math.abs(v * f)));
  let u = SECONDS[0];
  if (top >= 5999.5) u = [3600, 'h'];
  else if (top >= 999.5) u = [60, 'min'];
  else for (const c of SECONDS) if (top >= c[0] * 0.9995) u = c;
  return vals.map((v) => (v === 0 ? '0' : `${sig3((v * f) / u[0])} ${u[1]}`));
}

// Bytes in binary units: "512 B", "1.5 KiB", "20 MiB".
export function fmtBytes(b) {
  if (!Number.isFinite(b)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0, v = b;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? String(Math.round(v)) : sig3(v)} ${units[i]}`;
}

// A plain quantity: 950, 1.2k, 3.4M, 5G.
export function fmtNumber(n) {
  if (!Number.isFinite(n)) return '–';
  const a = Math.abs(n);
  if (a < 1000) return Number.isInteger(n) ? String(n) : sig3(n);
  for (const [f, s] of [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']])
    if (a >= f * 0.9995) return sig3(n / f) + s;
  return String(n);
}

// A count, whole, with thin-space thousands: 1 234 567.
export function fmtCount(n) {
  if (!Number.isFinite(n)) return '–';
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, '\u2009');
}

// A value of a field of describe's type t (e.g. {unit:'seconds', base:10, power:-9}).
export function fmtValue(v, t) {
  if (v === null || v === undefined) return '–';
  if (!t) return fmtNumber(v);
  if (t.unit === 'seconds') return fmtDuration(v * Math.pow(t.base || 10, t.power || 0));
  if (t.unit === 'bytes') return fmtBytes(v * Math.pow(t.base || 2, t.power || 0));
  const s = fmtNumber(v * Math.pow(t.base || 10, t.power || 0));
  return t.abbr ? `${s} ${t.abbr}` : s;
}

// A range [lo, hi) of a field's values: "1.2 ms – 1.5 ms".
export function fmtRange(lo, hi, t) {
  return `${fmtValue(lo, t)} – ${fmtValue(hi, t)}`;
}

const pad = (n) => String(n).padStart(2, '0');

// Wall-clock time of a Unix second, local: "16:22:05".
export function fmtClock(sec) {
  const d = new Date(sec * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

// The local day of a Unix second: "7 Dec".
export function fmtDay(sec) {
  const d = new Date(sec * 1000);
  return `${d.getDate()} ${MONTHS[d.getMonth()]}`;
}

// A Unix second for a reader of an interval span seconds long: the clock ("16:22:05") when
// the interval is shorter than a day, else with its day ("7 Dec 16:22:05").
export function fmtWhen(sec, span) {
  return span >= 86400 ? `${fmtDay(sec)} ${fmtClock(sec)}` : fmtClock(sec);
}

// A resolution (seconds one column or point covers): "1 s", "10 s", "1 min", "6 h", "1 d".
export function fmtGran(s) {
  if (!(s > 0)) return '–';
  if (s % 86400 === 0) return `${s / 86400} d`;
  if (s % 3600 === 0) return `${s / 3600} h`;
  if (s % 60 === 0) return `${s / 60} min`;
  return `${s} s`;
}

// Steps between the time axis's labels, in seconds.
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
  43200, 86400, 172800, 345600, 604800];

// The labels of a time axis over [start, end] (Unix seconds) px pixels wide, at most one per
// minPx pixels: [{t, label}], at round local times (a step of an hour falls on local hours, a
// day on local midnights). Labels suit the step: "16:22:05" under a minute, "16:20" under a
// day, where a label falling on midnight gives the day ("7 Dec"); days give the day alone.
export function timeTicks(start, end, px, minPx = 90) {
  const span = end - start;
  if (!(span > 0) || !(px > 0)) return [];
  const step = TIME_STEPS.find((s) => span / s <= Math.max(2, px / minPx)) || 604800;
  // local time, as seconds since the epoch of the local clock (DST within a range aside)
  const off = -new Date(start * 1000).getTimezoneOffset() * 60;
  const out = [];
  for (let lt = Math.ceil((start + off) / step) * step; lt - off <= end && out.length < 1000; lt += step) {
    const t = lt - off;
    let label;
    if (step >= 86400 || (lt % 86400 === 0 && span >= 86400)) label = fmtDay(t);
    else if (step < 60) label = fmtClock(t);
    else label = fmtClock(t).slice(0, 5);
    out.push({ t, label });
  }
  return out;
}

// A Unix second as the value of an <input type="datetime-local" step="1">.
export function toLocalInput(sec) {
  const d = new Date(sec * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// Tick values for a linear axis over [lo, hi]: about n of them at 1, 2 or 5 × 10^k steps,
// and never fewer than min (the step is made finer until there are).
export function niceTicks(lo, hi, n = 5, min = 4) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const steps = [0.1, 0.2, 0.5, 1, 2, 5, 10].map((m) => m * mag);
  const at = (step) => {
    const out = [];
    const q = lo / step;
    for (let k = Math.ceil(q - 1e-12 * Math.max(1, Math.abs(q))); k * step <= hi + step * 1e-9; k++)
      out.push(Number((k * step).toPrecision(12)));
    return out;
  };
  let i = steps.findIndex((s) => s >= raw * (1 - 1e-12));
  let out = at(steps[i]);
  while (out.length < min && i > 0) out = at(steps[--i]);
  return out;
}

// Ticks for a log axis over [lo, hi] (lo ≥ 1), between min and max of them: the powers of
// ten inside (every second or third one, down from the top, when there are too many), else 1-2-5 steps, else
// 1-2-3-5 and then every 1..9 × 10^k, else (less than a factor of two) linear ticks.
export function logTicks(lo, hi, min = 4, max = 10) {
  lo = Math.max(lo, 1);
  if (!(hi > lo)) return [lo];
  const within = (ms) => {
    const out = [];
    for (let e = Math.floor(Math.log10(lo)); Math.pow(10, e) <= hi; e++)
      for (const m of ms) {
        const v = Number((m * Math.pow(10, e)).toPrecision(12));
        if (v >= lo && v <= hi) out.push(v);
      }
    return out;
  };
  let out = within([1]);
  if (out.length > max) {
    const k = Math.ceil(out.length / max);
    const top = Math.round(Math.log10(out[out.length - 1]));
    return out.filter((v) => (top - Math.round(Math.log10(v))) % k === 0);
  }
  for (const ms of [[1, 2, 5], [1, 2, 3, 5], [1, 2, 3, 4, 5, 6, 7, 8, 9]])
    if (out.length < min) out = within(ms);
  if (out.length < min) out = niceTicks(lo, hi, 5, min).filter((v) => v >= lo);
  return out;
}

// Ticks for an axis of durations over [lo, hi] seconds: niceTicks in the unit the labels
// use (fmtDuration), so that long ones fall on whole minutes or hours.
export function durationTicks(lo, hi, n = 5, min = 4) {
  const top = Math.max(Math.abs(lo), Math.abs(hi));
  const f = top >= 5999.5 ? 3600 : top >= 999.5 ? 60 : 1;
  return niceTicks(lo / f, hi / f, n, min).map((v) => Number((v * f).toPrecision(12)));
}

// Parses a typed quantity for a field: "2ms", "1.5 s", "200us", "4KiB", "4096", into the
// field's raw integer (e.g. nanoseconds). NaN when it does not read.
export function parseValue(text, t) {
  // µ (micro sign) and μ (Greek mu) both read as micro
  const m = String(text).trim().replace(/\u03bc/g, '\u00b5').match(/^(-?\d+(?:\.\d+)?)\s*([a-zA-Zµ]*)$/);
  if (!m) return NaN;
  const x = Number(m[1]);
  const u = m[2].toLowerCase();
  if (!u) return x;
  if (t && t.unit === 'seconds') {
    const f = { ns: 1e-9, us: 1e-6, 'µs': 1e-6, ms: 1e-3, s: 1, m: 60, min: 60, h: 3600 }[u];
    if (f === undefined) return NaN;
    return Math.round((x * f) / Math.pow(t.base || 10, t.power || 0));
  }
  if (t && t.unit === 'bytes') {
    const f = { b: 1, k: 1024, kb: 1024, kib: 1024, m: 1 << 20, mb: 1 << 20, mib: 1 << 20,
      g: 1 << 30, gb: 1 << 30, gib: 1 << 30 }[u];
    if (f === undefined) return NaN;
    return Math.round(x * f);
  }
  const f = { k: 1e3, m: 1e6, g: 1e9 }[u];
  return f === undefined ? NaN : x * f;
}

// A value as parseValue reads it back, for an input: "250ms", "1.5s", "4KiB", "120000".
export function fmtInput(v, t) {
  if (t && t.unit === 'seconds') {
    const s = v * Math.pow(t.base || 10, t.power || 0);
    let unit = SECONDS[0];
    for (const u of SECONDS) if (Math.abs(s) >= u[0] * 0.9995) unit = u;
    return `${sig3(s / unit[0])}${unit[1] === 'µs' ? 'us' : unit[1]}`;
  }
  if (t && t.unit === 'bytes') return fmtBytes(v).replace(/\s+/g, '');
  return String(v);
}

// The full-intensity colour of a heatmap layer of this hue, as the server draws it
// (src/render/raster.c: HSV with saturation 0.9 and value 0.95, rounded to bytes).
export function hueColor(h) {
  const s = 0.9, v = 0.95, c = v * s, hp = (((h % 360) + 360) % 360) / 60;
  const x = c * (1 - Math.abs((hp % 2) - 1)), m = v - c;
  const [r, g, b] = [[c, x, 0], [x, c, 0], [0, c, x], [0, x, c], [x, 0, c], [c, 0, x]][
    Math.floor(hp) % 6];
  const byte = (u) => Math.round(Math.min(1, Math.max(0, u + m)) * 255);
  return `rgb(${byte(r)}, ${byte(g)}, ${byte(b)})`;
}
