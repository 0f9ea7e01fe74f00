// The UI's human units (ui/js/units.js), under Node: durations, sizes, counts, ticks, typed
// values read back, legend colours equal to the server's pixels (src/render/raster.c), and
// time axes and resolutions from a minute to a month.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  durationTicks, fmtBytes, fmtClock, fmtCount, fmtDay, fmtDuration, fmtGran, fmtNumber, fmtRange,
  fmtSeconds, fmtTicks, fmtValue, fmtWhen, hueColor, logTicks, niceTicks, parseValue, sig3, timeTicks,
} from '../../ui/js/units.js';

const NS = { name: 'time', arity: 'numeric', unit: 'seconds', abbr: 's', base: 10, power: -9 };
const MS = { name: 'subsecond', arity: 'numeric', unit: 'seconds', abbr: 's', base: 10, power: -3 };
const BYTES = { name: 'size', arity: 'numeric', unit: 'bytes', abbr: 'B', base: 2 };
const NUMBER = { name: 'number', arity: 'numeric', unit: '' };

test('three significant digits', () => {
  assert.equal(sig3(1.5), '1.5');
  assert.equal(sig3(1.234), '1.23');
  assert.equal(sig3(12.34), '12.3');
  assert.equal(sig3(123.4), '123');
  assert.equal(sig3(0), '0');
  assert.equal(sig3(-2.5), '-2.5');
});

test('durations pick ns, µs, ms, s and minutes', () => {
  assert.equal(fmtSeconds(750e-9), '750 ns');
  assert.equal(fmtSeconds(1.2e-6), '1.2 µs');
  assert.equal(fmtSeconds(3.45e-3), '3.45 ms');
  assert.equal(fmtSeconds(2), '2 s');
  assert.equal(fmtSeconds(999.9e-9), '1 µs'); // rounds into the next unit, not "1000 ns"
  assert.equal(fmtSeconds(90), '1m 30s');
  assert.equal(fmtSeconds(600), '10m');
  assert.equal(fmtSeconds(7500), '2h 5m');
  assert.equal(fmtSeconds(0), '0');
  assert.equal(fmtSeconds(NaN), '–');
});

test('sizes in binary units', () => {
  assert.equal(fmtBytes(512), '512 B');
  assert.equal(fmtBytes(1536), '1.5 KiB');
  assert.equal(fmtBytes(20 * 1024 * 1024), '20 MiB');
  assert.equal(fmtBytes(3 * 2 ** 30), '3 GiB');
});

test('plain numbers and counts', () => {
  assert.equal(fmtNumber(950), '950');
  assert.equal(fmtNumber(1200), '1.2k');
  assert.equal(fmtNumber(3.4e6), '3.4M');
  assert.equal(fmtNumber(2.5), '2.5');
  assert.equal(fmtCount(1234567), '1\u2009234\u2009567');
  assert.equal(fmtCount(12), '12');
});

test('values of the catalog types', () => {
  assert.equal(fmtValue(1500, NS), '1.5 µs');
  assert.equal(fmtValue(2_000_000, NS), '2 ms');
  assert.equal(fmtValue(250, MS), '250 ms');
  assert.equal(fmtValue(4096, BYTES), '4 KiB');
  assert.equal(fmtValue(42, NUMBER), '42');
  assert.equal(fmtValue(null, NS), '–');
  assert.equal(fmtRange(1_000_000, 2_000_000, NS), '1 ms – 2 ms');
  // values of fields (axes, ranges) stay in one unit: 100 s, not 1m 40s
  assert.equal(fmtValue(100e9, NS), '100 s');
  assert.equal(fmtRange(60e9, 120e9, NS), '60 s – 120 s');
});

test('durations in one unit, for axes', () => {
  assert.equal(fmtDuration(2e-3), '2 ms');
  assert.equal(fmtDuration(45), '45 s');
  assert.equal(fmtDuration(100), '100 s');
  assert.equal(fmtDuration(999), '999 s');
  assert.equal(fmtDuration(1000), '16.7 min');
  assert.equal(fmtDuration(3000), '50 min');
  assert.equal(fmtDuration(9000), '2.5 h');
  assert.equal(fmtDuration(0), '0');
  assert.equal(fmtDuration(NaN), '–');
  for (const v of [60, 90, 100, 150, 600, 7500]) assert.doesNotMatch(fmtDuration(v), /\dm \d|\dh \d/);
});

test('typed values read back in the field units', () => {
  assert.equal(parseValue('2ms', NS), 2_000_000);
  assert.equal(parseValue('150us', NS), 150_000);
  assert.equal(parseValue('150 µs', NS), 150_000);
  assert.equal(parseValue('1.5 s', NS), 1_500_000_000);
  assert.equal(parseValue('2500', NS), 2500);
  assert.equal(parseValue('1s', MS), 1000);
  assert.equal(parseValue('4KiB', BYTES), 4096);
  assert.equal(parseValue('1 MiB', BYTES), 1 << 20);
  assert.equal(parseValue('3k', NUMBER), 3000);
  assert.ok(Number.isNaN(parseValue('fast', NS)));
  assert.ok(Number.isNaN(parseValue('2 parsecs', NS)));
  assert.ok(Number.isNaN(parseValue('', NS)));
});

test('axis ticks', () => {
  assert.deepEqual(niceTicks(0, 100, 5), [0, 20, 40, 60, 80, 100]);
  assert.deepEqual(niceTicks(0, 1e6, 4), [0, 200000, 400000, 600000, 800000, 1000000]); // not 3
  assert.deepEqual(niceTicks(0, 7, 5), [0, 2, 4, 6]);
  assert.deepEqual(niceTicks(0, 1.2e8, 5), [0, 2e7, 4e7, 6e7, 8e7, 1e8, 1.2e8]);
  assert.deepEqual(niceTicks(1e6, 3e6, 5), [1e6, 1.5e6, 2e6, 2.5e6, 3e6]);
  assert.deepEqual(logTicks(1, 1e9), [1, 10, 100, 1000, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9]);
  assert.deepEqual(logTicks(100, 1000), [100, 200, 500, 1000]);
  assert.deepEqual(logTicks(0, 50), [1, 2, 5, 10, 20, 50]);
  // more than ten decades: every other one, down from the top
  assert.deepEqual(logTicks(1, 1.5e11), [10, 1000, 1e5, 1e7, 1e9, 1e11]);
  // less than a decade or two: finer steps, never fewer than four ticks
  assert.deepEqual(logTicks(1e6, 3e6), [1e6, 1.5e6, 2e6, 2.5e6, 3e6]);
  assert.deepEqual(logTicks(1e6, 9e6), [1e6, 2e6, 3e6, 5e6]);
  assert.deepEqual(logTicks(1e6, 2e7), [1e6, 2e6, 5e6, 1e7, 2e7]);
  // durations: whole minutes once the labels are in minutes
  assert.deepEqual(durationTicks(0, 150), [0, 50, 100, 150]);
  assert.deepEqual(durationTicks(0, 3000), [0, 600, 1200, 1800, 2400, 3000]);
  assert.deepEqual(fmtTicks(durationTicks(0, 3000), { unit: 'seconds', base: 10, power: 0 }),
    ['0', '10 min', '20 min', '30 min', '40 min', '50 min']);
  // one unit for a linear axis; each its own on a log one
  assert.deepEqual(fmtTicks([0, 5e5, 1e6, 1.5e6], NS), ['0', '0.5 ms', '1 ms', '1.5 ms']);
  assert.deepEqual(fmtTicks([0, 200e9, 400e9, 600e9, 800e9], NS), ['0', '200 s', '400 s', '600 s', '800 s']);
  assert.deepEqual(fmtTicks([1, 1000, 1e6], NS, true), ['1 ns', '1 µs', '1 ms']);
  assert.deepEqual(fmtTicks([0, 2048, 4096], BYTES), ['0 B', '2 KiB', '4 KiB']);
});

test('every axis has at least four ticks', () => {
  for (let hi = 1.3; hi < 1e12; hi *= 1.37) {
    for (const lo of [0, 1, hi / 7, hi / 2]) {
      const lin = niceTicks(lo, hi, 5);
      assert.ok(lin.length >= 4 && lin.length <= 12, `linear ${lo}–${hi}: ${lin}`);
      assert.ok(lin.every((v) => v >= lo - 1e-9 && v <= hi * (1 + 1e-9)), `linear ${lo}–${hi}: ${lin}`);
      if (hi / Math.max(lo, 1) > 1.05) {
        const log = logTicks(lo, hi);
        assert.ok(log.length >= 4 && log.length <= 10, `log ${lo}–${hi}: ${log}`);
      }
    }
  }
});

test('clock times are local hh:mm:ss', () => {
  const d = new Date(2026, 10, 29, 9, 5, 7);
  assert.equal(fmtClock(d.getTime() / 1000), '09:05:07');
});

test('legend colours are the server\'s full-intensity pixels', () => {
  // src/render/raster.c: HSV(hue, 0.9, 0.95) rounded to bytes; 21° and 112° are the first
  // two default hues
  assert.equal(hueColor(0), 'rgb(242, 24, 24)');
  assert.equal(hueColor(21), 'rgb(242, 101, 24)');
  assert.equal(hueColor(112), 'rgb(53, 242, 24)');
  assert.equal(hueColor(240), 'rgb(24, 24, 242)');
  assert.equal(hueColor(360 + 21), hueColor(21));
});

test('resolutions read as people say them', () => {
  assert.equal(fmtGran(1), '1 s');
  assert.equal(fmtGran(10), '10 s');
  assert.equal(fmtGran(60), '1 min');
  assert.equal(fmtGran(300), '5 min');
  assert.equal(fmtGran(3600), '1 h');
  assert.equal(fmtGran(86400), '1 d');
  assert.equal(fmtGran(90), '90 s');
});

test('times carry their day over a day or more', () => {
  const t = new Date(2026, 11, 7, 16, 22, 5).getTime() / 1000;
  assert.equal(fmtDay(t), '7 Dec');
  assert.equal(fmtWhen(t, 3600), '16:22:05');
  assert.equal(fmtWhen(t, 86400), '7 Dec 16:22:05');
});

test('time axes suit their range: seconds, minutes, hours, days', () => {
  const end = new Date(2026, 11, 7, 16, 22, 5).getTime() / 1000;
  const clock = /^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$/, day = /^\d{1,2} [A-Z][a-z]{2}$/;
  for (const [span, re, sec] of [[60, clock, true], [300, clock, false], [3600, clock, false],
    [21600, clock, false], [604800, day, false], [2592000, day, false]]) {
    const ticks = timeTicks(end - span, end, 600);
    assert.ok(ticks.length >= 2 && ticks.length <= 7, `${span}: ${ticks.map((x) => x.label)}`);
    for (const { t, label } of ticks) {
      assert.ok(t >= end - span && t <= end, `${span}: ${t}`);
      assert.match(label, re, `${span}: ${label}`);
      assert.equal(label.length === 8, sec, `${span}: ${label}`);
    }
    // round local times, evenly spaced
    const steps = new Set(ticks.slice(1).map((x, i) => x.t - ticks[i].t));
    assert.ok(steps.size <= 2, `${span}: steps ${[...steps]}`); // (a change of summer time)
  }
  // a day: hours, and its midnight says the day
  const oneDay = timeTicks(end - 86400, end, 600);
  assert.ok(oneDay.some((x) => x.label === '7 Dec'), oneDay.map((x) => x.label).join(' '));
  assert.ok(oneDay.every((x) => clock.test(x.label) || x.label === '7 Dec'), oneDay.map((x) => x.label).join(' '));
  // six hours fall on local hours
  for (const { t } of timeTicks(end - 21600, end, 600)) assert.equal(new Date(t * 1000).getMinutes(), 0);
});
