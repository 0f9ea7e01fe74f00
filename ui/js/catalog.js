// The metric catalog (the server's describe, GET /ca): loading it, questions about fields and
// metrics that every view asks, and the catalog browser.

import { get } from './api.js';
import { h } from './dom.js';

let cached = null;

export async function loadCatalog(force) {
  if (!cached || force) cached = await get('');
  return cached;
}

export const metricKey = (m) => `${m.module}.${m.stat}`;

export function metricOf(cat, module, stat) {
  return cat.metrics.find((m) => m.module === module && m.stat === stat) || null;
}

export function fieldType(cat, field) {
  const f = cat.fields[field];
  return f ? cat.types[f.type] || null : null;
}

export const isNumeric = (cat, field) => {
  const t = fieldType(cat, field);
  return !!t && t.arity === 'numeric';
};

export const fieldLabel = (cat, field) => (cat.fields[field] ? cat.fields[field].label : field);

// The unit a type shows in, in words: "time (ns)", "bytes", "".
export function typeUnit(t) {
  if (!t || !t.unit) return '';
  if (t.unit === 'seconds') {
    const p = t.power || 0;
    return { '-9': 'nanoseconds', '-6': 'microseconds', '-3': 'milliseconds', 0: 'seconds' }[p] ||
      `seconds × 10^${p}`;
  }
  return t.unit;
}

// A predicate as text: {"and":[{"eq":["execname","bash"]},{"gt":["latency",1000]}]}
// → execname == "bash" and latency > 1000.
export function predText(p) {
  if (!p || typeof p !== 'object' || Object.keys(p).length === 0) return '';
  const op = Object.keys(p)[0];
  const arg = p[op];
  if (op === 'and' || op === 'or') {
    const parts = arg.map((q) => {
      const t = predText(q);
      return Object.keys(q)[0] === 'and' || Object.keys(q)[0] === 'or' ? `(${t})` : t;
    });
    return parts.join(` ${op} `);
  }
  const sym = { eq: '==', ne: '!=', lt: '<', le: '<=', gt: '>', ge: '>=', under: 'under' }[op] || op;
  const v = typeof arg[1] === 'string' ? JSON.stringify(arg[1]) : arg[1];
  return `${arg[0]} ${sym} ${v}`;
}

// A title for an instrumentation: "System calls: system calls by application name and latency".
export function instTitle(cat, inst) {
  const m = metricOf(cat, inst.module, inst.stat);
  const mod = cat.modules[inst.module] ? cat.modules[inst.module].label : inst.module;
  let t = `${mod}: ${m ? m.label : inst.stat}`;
  if (inst.decomposition && inst.decomposition.length)
    t += ` by ${inst.decomposition.map((f) => fieldLabel(cat, f)).join(' and ')}`;
  return t;
}

// The catalog browser: modules, their metrics, each metric's fields with types and units,
// and a button to instrument it.
export function catalogView(cat, onInstrument) {
  const byModule = new Map();
  for (const m of cat.metrics) {
    if (!byModule.has(m.module)) byModule.set(m.module, []);
    byModule.get(m.module).push(m);
  }
  const filter = h('input.catalog-filter', {
    type: 'search',
    placeholder: 'Filter metrics and fields…',
    'aria-label': 'filter the catalog',
  });
  const sections = [];
  for (const [mod, metrics] of byModule) {
    const label = cat.modules[mod] ? cat.modules[mod].label : mod;
    const cards = metrics.map((m) => {
      const rows = m.fields.map((f) => {
        const t = fieldType(cat, f);
        return h('tr', { dataset: { field: f } },
          h('td', h('code', f)),
          h('td', fieldLabel(cat, f)),
          h('td', t && t.arity === 'numeric' ? 'numeric' : 'discrete'),
          h('td', typeUnit(t)));
      });
      const card = h('article.metric-card', { dataset: { metric: metricKey(m) } },
        h('header',
          h('h3', m.label),
          h('code.muted', metricKey(m)),
          m.unit ? h('span.muted', ` · counts ${m.unit}`) : null,
          h('button.small', { type: 'button', onclick: () => onInstrument(m) }, 'Instrument…')),
        h('table.fields',
          h('thead', h('tr', h('th', 'field'), h('th', 'meaning'), h('th', 'kind'), h('th', 'unit'))),
          h('tbody', rows)));
      card.searchText = `${label} ${m.label} ${metricKey(m)} ${m.fields.join(' ')} ${
        m.fields.map((f) => fieldLabel(cat, f)).join(' ')}`.toLowerCase();
      return card;
    });
    sections.push(h('section.module', { dataset: { module: mod } }, h('h2', label), cards));
  }
  // the count says what the filter leaves: "N of M metrics"
  const total = cat.metrics.length;
  const count = h('span.muted.catalog-count', { role: 'status' });
  const showCount = (shown, modules) => {
    count.textContent = shown === total
      ? `${total} metrics in ${byModule.size} modules`
      : `${shown} of ${total} metrics (in ${modules} of ${byModule.size} modules)`;
  };
  filter.addEventListener('input', () => {
    const q = filter.value.trim().toLowerCase();
    let shown = 0, modules = 0;
    for (const s of sections) {
      let any = false;
      for (const card of s.querySelectorAll('.metric-card')) {
        const show = !q || card.searchText.includes(q);
        card.hidden = !show;
        any = any || show;
        shown += show;
      }
      s.hidden = !any;
      modules += any;
    }
    showCount(shown, modules);
  });
  showCount(total, byModule.size);
  return h('div.catalog', h('div.toolbar', filter, count), sections);
}
