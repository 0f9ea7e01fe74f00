// One trace as a waterfall (#/trace/ID): its spans on a time axis from the trace's first start
// to its last end, nested by parent (a span whose parent is missing starts a tree of its own),
// each a bar with its duration, a hue per service, errors in red. A click on a span shows its
// attributes (tags, annotations, kind, endpoints, ids). Above: the trace's figures and its
// slowest spans (dprof's "spans ranked by duration"). The spans come from Zipkin's
// GET /api/v2/trace/ID (docs/tracing.md); a heatmap cell of span latency links here.

import { getRoot } from './api.js';
import { fill, h } from './dom.js';
import { fmtDuration, hueColor } from './units.js';

const us = (v) => fmtDuration((v || 0) / 1e6);
const hueOf = (name, names) => (21 + 91 * names.indexOf(name)) % 360;
const isError = (s) => s.tags && (s.tags.error !== undefined || s.tags['otel.status_code'] === 'ERROR');

// The spans in waterfall order: depth-first from the roots, children by start.
export function order(spans) {
  const byId = new Map(spans.map((s) => [s.id, s]));
  const kids = new Map();
  const roots = [];
  for (const s of spans) {
    const p = s.parentId && s.parentId !== s.id && byId.has(s.parentId) ? s.parentId : null;
    if (p) {
      if (!kids.has(p)) kids.set(p, []);
      kids.get(p).push(s);
    } else {
      roots.push(s);
    }
  }
  const byStart = (a, b) => (a.timestamp || 0) - (b.timestamp || 0);
  const out = [];
  const seen = new Set();
  const walk = (s, depth) => {
    if (seen.has(s)) return; // a cycle of parent ids: each span once
    seen.add(s);
    out.push({ span: s, depth });
    for (const c of (kids.get(s.id) || []).sort(byStart)) walk(c, depth + 1);
  };
  roots.sort(byStart).forEach((r) => walk(r, 0));
  for (const s of spans) if (!seen.has(s)) walk(s, 0);
  return out;
}

function attrTable(span) {
  const rows = [
    ['span id', span.id], ['parent id', span.parentId || '—'], ['kind', span.kind || '—'],
    ['service', (span.localEndpoint && span.localEndpoint.serviceName) || '—'],
    ['start', new Date((span.timestamp || 0) / 1000).toISOString()],
    ['duration', us(span.duration)],
  ];
  if (span.remoteEndpoint) {
    const r = span.remoteEndpoint;
    rows.push(['remote', [r.serviceName, r.ipv4 || r.ipv6, r.port].filter(Boolean).join(' ')]);
  }
  for (const [k, v] of Object.entries(span.tags || {}).sort()) rows.push([k, v]);
  return h('div.span-attrs',
    h('h3', span.name || '(no name)'),
    h('table.details-table', h('tbody', rows.map(([k, v]) => h('tr', h('th', k), h('td', String(v)))))),
    (span.annotations || []).length
      ? h('div', h('h4', 'Events'), h('ul.span-events', span.annotations.map((a) =>
        h('li', `+${us(a.timestamp - span.timestamp)} `, a.value))))
      : null);
}

// The view of trace id into el; resolves when drawn (rejects with the API's error).
export async function traceView(el, id) {
  const spans = await getRoot(`api/v2/trace/${encodeURIComponent(id)}`);
  const rows = order(spans || []);
  const t0 = Math.min(...spans.map((s) => s.timestamp || Infinity));
  const t1 = Math.max(...spans.map((s) => (s.timestamp || 0) + (s.duration || 0)));
  const total = Math.max(1, t1 - t0);
  const services = [...new Set(spans.map((s) => (s.localEndpoint && s.localEndpoint.serviceName) || ''))].sort();
  const errors = spans.filter(isError).length;
  const root = rows.length ? rows[0].span : null;
  const attrs = h('div.span-panel', h('p.muted', 'Click a span for its attributes.'));
  const slowest = [...spans].sort((a, b) => (b.duration || 0) - (a.duration || 0)).slice(0, 5);
  const durs = spans.map((s) => s.duration || 0);
  const avg = durs.reduce((a, b) => a + b, 0) / Math.max(1, durs.length);

  const bar = (s) => {
    const left = (100 * ((s.timestamp || t0) - t0)) / total;
    const width = Math.max(0.2, (100 * (s.duration || 0)) / total);
    const svc = (s.localEndpoint && s.localEndpoint.serviceName) || '';
    return h('div.wf-track', h('div.wf-bar', {
      style: { left: `${left}%`, width: `${Math.min(width, 100 - left)}%`,
        background: isError(s) ? '#dc2626' : hueColor(hueOf(svc, services)) },
    }), h('span.wf-dur', us(s.duration)));
  };
  const list = h('div.waterfall', { role: 'list', 'aria-label': 'spans of the trace' },
    rows.map(({ span, depth }) => {
      const svc = (span.localEndpoint && span.localEndpoint.serviceName) || '';
      const row = h('div.wf-row', { role: 'listitem', tabIndex: 0, dataset: { span: span.id }, title: 'click for attributes' },
        h('div.wf-name', { style: { paddingLeft: `${depth * 14}px` } },
          h('span.swatch', { style: { background: hueColor(hueOf(svc, services)) } }),
          h('span.wf-service', svc), ' ', h('span.wf-op', span.name || '')),
        bar(span));
      const pick = () => {
        for (const r of list.querySelectorAll('.wf-row.chosen')) r.classList.remove('chosen');
        row.classList.add('chosen');
        fill(attrs, attrTable(span));
      };
      row.onclick = pick;
      row.onkeydown = (ev) => {
        if (ev.key === 'Enter' || ev.key === ' ') {
          ev.preventDefault();
          pick();
        }
      };
      return row;
    }));
  fill(el,
    h('h1', 'Trace ', h('code', id)),
    h('p.trace-summary',
      root ? `${(root.localEndpoint && root.localEndpoint.serviceName) || ''} ${root.name || ''} · ` : '',
      `${us(total)} · ${spans.length} spans · ${services.length} services`,
      errors ? h('span.error', ` · ${errors} with errors`) : ''),
    h('p.muted', `spans: min ${us(Math.min(...durs))}, avg ${us(avg)}, max ${us(Math.max(...durs))}; slowest: `,
      slowest.map((s, i) => [i ? ', ' : '', `${s.name || '?'} ${us(s.duration)}`])),
    h('div.wf-axis', h('span', '0'), h('span', us(total / 2)), h('span', us(total))),
    list, attrs);
}
