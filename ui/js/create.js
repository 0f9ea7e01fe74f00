// The form that creates an instrumentation: a metric picker, decomposition pickers limited to
// the metric's fields of each kind (at most one discrete and one numeric, as the server
// allows), the predicate builder, granularity, retention and idle-max, and whether it keeps
// history (persist-data, checked by default: what the UI creates keeps its history); a
// preview of the body sent, and the server's refusal in words.

import { call } from './api.js';
import { fieldLabel, isNumeric, metricKey, metricOf } from './catalog.js';
import { fill, h } from './dom.js';
import { PredicateBuilder } from './predicate.js';

// Starting points a newcomer can take in one click.
export const PRESETS = [
  { label: 'System-call latency by process', module: 'syscall', stat: 'syscalls',
    decomposition: ['execname', 'latency'] },
  { label: 'File-system latency by operation', module: 'fs', stat: 'logical_ops',
    decomposition: ['optype', 'latency'] },
  { label: 'Disk I/O latency by disk', module: 'disk', stat: 'physio_ops',
    decomposition: ['disk', 'latency'] },
  { label: 'CPU usage by mode', module: 'cpu', stat: 'usage', decomposition: ['cpumode'] },
  { label: 'Processes started, by name', module: 'unix', stat: 'proc_execs',
    decomposition: ['execname'] },
];

// The body that creates preset p: with its history kept, as everything the UI creates.
export function presetBody(p) {
  return { module: p.module, stat: p.stat, decomposition: p.decomposition, 'persist-data': true };
}

function labelled(text, control, hint) {
  return h('label.field', h('span.field-label', text), control, hint ? h('small.hint', hint) : null);
}

// Renders the form into a new element; onCreated(inst) after a successful create.
export function createView(cat, { initial, onCreated }) {
  const metricSel = h('select', { name: 'metric', required: true });
  const byModule = new Map();
  for (const m of cat.metrics) {
    if (!byModule.has(m.module)) byModule.set(m.module, []);
    byModule.get(m.module).push(m);
  }
  for (const [mod, ms] of byModule)
    metricSel.append(h('optgroup', { label: cat.modules[mod] ? cat.modules[mod].label : mod },
      ms.map((m) => h('option', { value: metricKey(m) }, `${m.label} (${metricKey(m)})`))));
  const discreteSel = h('select', { name: 'discrete' });
  const numericSel = h('select', { name: 'numeric' });
  const gran = h('select', { name: 'granularity' },
    [1, 5, 10, 30, 60].map((g) => h('option', { value: g }, `${g} s`)));
  const retention = h('input', { name: 'retention', type: 'number', min: 10, value: 600, step: 1 });
  const idle = h('input', { name: 'idle', type: 'number', min: 0, max: 604800, value: 3600 });
  const persist = h('input', { name: 'persist', type: 'checkbox', checked: true });
  const preview = h('pre.create-preview', { 'aria-label': 'the request body' });
  const error = h('p#new-error.error', { role: 'alert', hidden: true });
  const submit = h('button.primary', { type: 'submit', 'aria-describedby': 'create-why' }, 'Create');
  const why = h('span#create-why.create-why.error', { hidden: true });
  const current = () => {
    const [module, stat] = metricSel.value.split('.');
    return metricOf(cat, module, stat);
  };
  const pred = new PredicateBuilder(cat, null);

  const setMetric = () => {
    const m = current();
    const opt = (f) => h('option', { value: f }, `${fieldLabel(cat, f)} (${f})`);
    const d = discreteSel.value, n = numericSel.value;
    fill(discreteSel, h('option', { value: '' }, '— none —'),
      (m ? m.fields : []).filter((f) => !isNumeric(cat, f)).map(opt));
    fill(numericSel, h('option', { value: '' }, '— none —'),
      (m ? m.fields : []).filter((f) => isNumeric(cat, f)).map(opt));
    if ([...discreteSel.options].some((o) => o.value === d)) discreteSel.value = d;
    if ([...numericSel.options].some((o) => o.value === n)) numericSel.value = n;
    numericSel.disabled = numericSel.options.length === 1;
    discreteSel.disabled = discreteSel.options.length === 1;
    pred.setMetric(m);
    update();
  };

  const body = () => {
    const m = current();
    const b = { module: m.module, stat: m.stat };
    const decomp = [discreteSel.value, numericSel.value].filter(Boolean);
    if (decomp.length) b.decomposition = decomp;
    const p = pred.value();
    if (Object.keys(p).length) b.predicate = p;
    b.granularity = Number(gran.value);
    // an empty field leaves the server's default (an empty idle max is not "never")
    if (retention.value.trim() !== '') b['retention-time'] = Number(retention.value);
    if (idle.value.trim() !== '') b['idle-max'] = Number(idle.value);
    if (persist.checked) b['persist-data'] = true;
    return b;
  };

  // The preview follows the form; a condition whose value does not read says so on its row,
  // and Create waits for it (its reason beside it).
  let busy = false;
  function update() {
    const problem = pred.check();
    try {
      preview.textContent = JSON.stringify(body(), null, 2);
      preview.classList.remove('stale');
    } catch (e) {
      preview.classList.add('stale');
    }
    submit.disabled = busy || !!problem;
    submit.title = problem ? `Not yet: ${problem}` : '';
    why.textContent = problem ? `Not yet: ${problem}` : '';
    why.hidden = !problem;
  }

  const apply = (p) => {
    metricSel.value = `${p.module}.${p.stat}`;
    setMetric();
    const ds = p.decomposition || [];
    discreteSel.value = ds.find((f) => !isNumeric(cat, f)) || '';
    numericSel.value = ds.find((f) => isNumeric(cat, f)) || '';
    update();
  };

  const form = h('form#new-form.create', { novalidate: true },
    h('div.presets', h('span.muted', 'Start from: '),
      PRESETS.filter((p) => metricOf(cat, p.module, p.stat)).map((p) =>
        h('button.small.preset', { type: 'button', onclick: () => apply(p) }, p.label))),
    h('div.grid2',
      h('div',
        labelled('Metric', metricSel),
        labelled('Split by (a discrete field)', discreteSel, 'a hue per value in heatmaps, a band per value in charts'),
        labelled('Distribution of (a numeric field)', numericSel, 'makes the panel a heatmap'),
        h('div.field', h('span.field-label', 'Only events where (predicate)'), pred.el),
        h('div.row3',
          labelled('Granularity', gran),
          labelled('Retention (s)', retention, '10 to 3600 × granularity'),
          labelled('Idle max (s)', idle, 'deleted after this long unwatched; 0 never')),
        h('label.check.persist', persist, ' Keep its history (persist-data): every second for 2 days, ' +
          '1-minute data for 90 days and hourly data for years (the server\'s --tiers); unchecked, ' +
          'only the retention above is kept')),
      h('div', h('span.field-label', 'Request'), preview)),
    error,
    h('div.actions', submit, why));

  form.addEventListener('change', update);
  form.addEventListener('input', update);
  metricSel.addEventListener('change', setMetric);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    let b;
    try {
      b = body();
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
      return;
    }
    busy = true;
    submit.disabled = true;
    try {
      const inst = await call('POST', '/instrumentations', { body: b });
      onCreated(inst);
    } catch (e) {
      error.textContent = `Not created: ${e.message}`;
      error.hidden = false;
    } finally {
      busy = false;
      update();
    }
  });

  // a metric named by the route, if the catalog has it; else the first preset's
  const known = initial && cat.metrics.some((m) => metricKey(m) === initial);
  metricSel.value = known ? initial : metricKey(cat.metrics[0]);
  setMetric();
  const preset = PRESETS.find((p) => metricOf(cat, p.module, p.stat));
  if (!known && preset) apply(preset);
  if (initial && !known) {
    error.textContent = `There is no metric "${initial}" in this server's catalog.`;
    error.hidden = false;
  }
  return form;
}
