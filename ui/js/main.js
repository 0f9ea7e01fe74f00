// The web UI's shell: the header and its connection state, the banner shown while the server
// is away, and the views behind the location's hash:
//   #/            live panels of every instrumentation, and their list
//   #/dashboards  the saved dashboards, and a form for a new one
//   #/d/NAME      a dashboard
//   #/new[/M.S]   the form to create one (optionally of metric M.S)
//   #/catalog     the metric catalog
//   #/access      scope and token, for servers with tenants
//
// The live view's and a dashboard's URL carry what they show, so that a reload or a shared
// link shows it again: the time (t=SECONDS [&at=END] or from=START&len=N, timectl.js; nothing
// for live 60 s, where a page starts) and,
// per heatmap panel, v.ID=SCALE~YMIN~YMAX~MODE~SHADE~KEYS (YMAX empty: auto; MODE empty: none;
// SHADE empty: by count, else rank; KEYS comma-separated, last, as keys never hold a comma but
// may hold a "~"). The URL is
// rewritten in place (history.replaceState) as these change.

import { ApiError, OfflineError, call, conn, session } from './api.js';
import { catalogView, instTitle, loadCatalog, predText } from './catalog.js';
import { PRESETS, createView, presetBody } from './create.js';
import { Dashboard, dashboardList } from './dashboard.js';
import { fill, h } from './dom.js';
import { Panel } from './panel.js';
import { time, timeBar } from './timectl.js';
import { traceView } from './trace.js';

const view = document.getElementById('view');
const banner = document.getElementById('banner');
const connState = document.getElementById('conn');
const panels = new Map(); // id → Panel, kept across views so their settings survive
let catalog = null;
let notice = '';
let routeGen = 0; // a route() that finds a newer one started stops
let live = null; // the live view while it is shown: {sync, gone}
let dash = null; // the dashboard shown, if any
let waitingForServer = false; // the view is the "waiting for the server" placeholder
let urlQuery = new URLSearchParams(); // the parameters of the route's URL

// --- the view in the URL -----------------------------------------------------------------
const MODES = ['isolate', 'exclude', 'decompose_all'];
function encodeState(st) {
  const num = (x) => (x === null || x === undefined ? '' : String(x));
  return [st.yscale, num(st.ymin), num(st.ymax), st.mode || '',
    st.coloring === 'rank' ? 'rank' : '', (st.selected || []).join(',')].join('~');
}
function decodeState(text) {
  const parts = String(text).split('~');
  if (parts.length < 6) return null;
  const [yscale, ymin, ymax, mode, shade] = parts;
  const keys = parts.slice(5).join('~');
  const st = {};
  if (yscale === 'log' || yscale === 'linear') st.yscale = yscale;
  if (ymin !== '' && Number.isFinite(Number(ymin))) st.ymin = Number(ymin);
  st.ymax = ymax === '' ? null : Number.isFinite(Number(ymax)) ? Number(ymax) : undefined;
  st.mode = MODES.includes(mode) ? mode : null;
  st.coloring = shade === 'rank' ? 'rank' : 'linear';
  st.selected = keys ? keys.split(',') : [];
  return st;
}
// The state the route's URL gives instrumentation id, or null.
function urlState(id) {
  const v = urlQuery.get(`v.${id}`);
  return v === null ? null : decodeState(v);
}

let urlTimer = null;
function writeUrl() {
  clearTimeout(urlTimer);
  urlTimer = setTimeout(() => {
    const [path] = (location.hash.replace(/^#/, '') || '/').split('?');
    let shown;
    if (live && path === '/') shown = [...panels.values()].filter((p) => p.running);
    else if (dash && path.startsWith('/d/')) shown = dash.panels();
    else return;
    // the default time (live, the last minute) goes unsaid: a page opens on it
    const tq = time.toQuery();
    const q = new URLSearchParams(tq.t === '60' && !tq.at ? {} : tq);
    for (const p of shown) {
      if (!p.heatmap) continue;
      // a dashboard's panels say all (the dashboard's own may change); live ones what differs
      if (dash || Object.keys(p.changedState()).length) q.set(`v.${p.inst.id}`, encodeState(p.viewState()));
    }
    const qs = q.toString();
    const url = `#${path}${qs ? `?${qs}` : ''}`;
    if (location.hash !== url) history.replaceState(history.state, '', url);
    urlQuery = q;
  }, 200);
}
time.addEventListener('change', writeUrl);

// --- connection ------------------------------------------------------------------------
// The banner is announced once when it appears (role=status); its countdown is not.
const bannerText = h('span', h('strong', 'The server cannot be reached. '),
  'The page retries by itself and carries on when it is back. ');
const countdown = h('span.muted', { 'aria-hidden': 'true' });
banner.append(bannerText, countdown);
function showConn() {
  banner.hidden = conn.online;
  connState.textContent = conn.online ? 'connected' : 'reconnecting';
  connState.className = conn.online ? 'conn ok' : 'conn bad';
  const s = Math.max(0, Math.ceil((conn.nextTry - Date.now()) / 1000));
  countdown.textContent = conn.online ? '' : s ? `Next try in ${s} s.` : 'Trying…';
}
conn.addEventListener('change', () => {
  showConn();
  // back: a view that could not load loads now; the others carry on by themselves
  if (conn.online && (waitingForServer || !catalog)) route();
  else if (conn.online && live) live.sync();
});
conn.addEventListener('tick', showConn);
setInterval(() => { if (!conn.online) showConn(); }, 500);

// --- views -------------------------------------------------------------------------------
function setNav(name) {
  for (const a of document.querySelectorAll('nav a'))
    a.setAttribute('aria-current', a.dataset.nav === name ? 'page' : 'false');
}

function leaveLive() {
  for (const p of panels.values()) p.stop();
  if (live) clearInterval(live.timer);
  live = null;
  if (dash) dash.stop();
  dash = null;
}

async function ensureCatalog() {
  if (!catalog) catalog = await loadCatalog(true);
  return catalog;
}

function errorView(e) {
  if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
    notice = e.message;
    location.hash = '#/access';
    return null;
  }
  return h('div.empty', h('p.error', e.message),
    h('button', { type: 'button', onclick: () => route() }, 'Try again'));
}

function listRow(inst) {
  const p = predText(inst.predicate);
  return h('li', { dataset: { id: inst.id } },
    h('a', { href: '#/', onclick: (e) => {
      e.preventDefault();
      const el = document.getElementById(`panel-${inst.id}`);
      if (el) el.scrollIntoView({ behavior: 'smooth', block: 'start' });
    } }, h('code', `#${inst.id}`), ' ', instTitle(catalog, inst)),
    p ? h('span.muted', ` where ${p}`) : null);
}

function emptyLive(onCreated) {
  const err = h('p.error', { role: 'alert' });
  return h('div.empty',
    h('h2', 'Nothing is instrumented yet'),
    h('p', 'Ask a question of this machine\'s kernel. For instance:'),
    h('div.presets', PRESETS.filter((p) => catalog.metrics.some((m) => m.module === p.module && m.stat === p.stat))
      .map((p) => h('button.preset', { type: 'button', onclick: async (ev) => {
        ev.target.disabled = true;
        try {
          await call('POST', '/instrumentations', { body: presetBody(p) });
          onCreated();
        } catch (e) {
          ev.target.disabled = false;
          err.textContent = e.message;
        }
      } }, p.label))),
    err,
    h('p', 'or ', h('a', { href: '#/new' }, 'build your own'), ' from ', h('a', { href: '#/catalog' }, 'the catalog'), '.'));
}

// Panels call these; they act on the live view shown now, if any.
const hooks = {
  onGone(p, why) {
    panels.delete(p.inst.id);
    p.stop();
    p.el.replaceWith(h('p.notice', `Instrumentation #${p.inst.id} ${why === 'deleted'
      ? 'was deleted' : 'no longer exists (deleted elsewhere, or reaped after being idle)'}.`));
    if (live) live.sync();
  },
  onCloned() {
    if (live) live.sync();
  },
  onChange: () => writeUrl(),
};

async function liveView(gen) {
  setNav('live');
  const cat = await ensureCatalog();
  if (gen !== routeGen) return;
  const list = h('ul.inst-list', { 'aria-label': 'instrumentations' });
  const holder = h('div.panels');
  const count = h('span.muted');
  fill(view, h('div.live-head', timeBar(), h('a.button', { href: '#/new' }, '+ New instrumentation')),
    h('details.inst-box', { open: true }, h('summary', 'Instrumentations ', count), list), holder);

  let syncing = null;
  async function sync() {
    if (syncing) return syncing; // one at a time
    syncing = (async () => {
      let insts;
      try {
        insts = await call('GET', '/instrumentations');
      } catch (e) {
        if (e instanceof OfflineError) return;
        const ev = errorView(e);
        if (ev) fill(holder, ev);
        return;
      }
      if (!live || live.sync !== sync) return; // the view was left meanwhile
      insts.sort((a, b) => Number(b.id) - Number(a.id)); // newest first
      const ids = new Set(insts.map((i) => i.id));
      for (const [id, p] of panels)
        if (!ids.has(id)) hooks.onGone(p, 'gone');
      // panels in order, moving only what is out of place (moving an element drops focus)
      let prev = null;
      for (const inst of insts) {
        let p = panels.get(inst.id);
        if (!p) {
          p = new Panel(cat, inst, hooks);
          panels.set(inst.id, p);
        }
        if (!p.urlApplied) { // the URL's view of it, once per route
          p.urlApplied = true;
          p.applyState(urlState(inst.id));
        }
        const want = prev ? prev.nextElementSibling : holder.firstElementChild;
        if (want !== p.el) {
          if (prev) prev.after(p.el);
          else holder.prepend(p.el);
        }
        prev = p.el;
        p.start();
      }
      const empty = holder.querySelector(':scope > .empty');
      if (insts.length && empty) empty.remove();
      if (!insts.length && !empty) holder.append(emptyLive(sync));
      fill(list, insts.map(listRow));
      count.textContent = `(${insts.length})`;
    })();
    try {
      await syncing;
    } finally {
      syncing = null;
    }
  }
  for (const p of panels.values()) p.urlApplied = false;
  live = { sync, timer: setInterval(() => { if (!document.hidden) sync(); }, 5000) };
  await sync();
  writeUrl();
}

async function dashboardsPage(gen) {
  setNav('dashboards');
  await ensureCatalog();
  const el = await dashboardList((name) => { location.hash = `#/d/${encodeURIComponent(name)}`; });
  if (gen !== routeGen) return;
  fill(view, h('h1', 'Dashboards'), el);
}

async function dashboardPage(gen, name) {
  setNav('dashboards');
  const cat = await ensureCatalog();
  if (gen !== routeGen) return;
  const d = new Dashboard(cat, name, {
    urlState,
    onChange: () => writeUrl(),
    onDeleted: () => { location.hash = '#/dashboards'; },
  });
  try {
    await d.load();
  } catch (e) {
    d.stop();
    if (e instanceof ApiError && e.status === 404) {
      if (gen !== routeGen) return;
      fill(view, h('div.empty', h('h2', `There is no dashboard called "${name}"`),
        h('p', h('a', { href: '#/dashboards' }, 'Dashboards'), ' lists those there are.')));
      return;
    }
    throw e;
  }
  if (gen !== routeGen) {
    d.stop();
    return;
  }
  dash = d;
  fill(view, d.el);
  writeUrl();
}

async function newView(gen, metric) {
  setNav('new');
  const cat = await ensureCatalog();
  if (gen !== routeGen) return;
  fill(view, h('h1', 'New instrumentation'),
    createView(cat, { initial: metric, onCreated: (inst) => {
      notice = `Instrumentation #${inst.id} created.`;
      location.hash = '#/';
    } }));
}

async function catalogPage(gen) {
  setNav('catalog');
  const cat = await ensureCatalog();
  if (gen !== routeGen) return;
  fill(view, h('h1', 'Metric catalog'),
    catalogView(cat, (m) => { location.hash = `#/new/${m.module}.${m.stat}`; }));
}

function accessView() {
  setNav('access');
  const scope = h('input', { name: 'scope', value: session.scope, placeholder: 'operator (empty)' });
  const token = h('input', { name: 'token', type: 'password', value: session.token, autocomplete: 'off' });
  const form = h('form.access', { onsubmit: (e) => {
    e.preventDefault();
    session.scope = scope.value.trim();
    session.token = token.value.trim();
    session.save();
    catalog = null;
    showHost();
    for (const p of panels.values()) p.stop();
    panels.clear();
    location.hash = '#/';
  } },
  h('p', 'A server started with a tenants file asks for a token. The operator\'s token opens every scope; a tenant\'s token opens its own scope only (give the tenant\'s name).'),
  h('label.field', h('span.field-label', 'Tenant (empty for the operator)'), scope),
  h('label.field', h('span.field-label', 'Token'), token),
  h('div.actions', h('button.primary', { type: 'submit' }, 'Save')));
  fill(view, h('h1', 'Access'), notice ? h('p.error', notice) : null, form);
  notice = '';
}

async function route() {
  const gen = ++routeGen;
  leaveLive();
  waitingForServer = false;
  const [hash, qs] = (location.hash.replace(/^#/, '') || '/').split('?');
  urlQuery = new URLSearchParams(qs || '');
  if (hash === '/' || hash.startsWith('/d/')) time.fromQuery(urlQuery);
  const msg = notice;
  try {
    if (hash === '/') await liveView(gen);
    else if (hash === '/dashboards') await dashboardsPage(gen);
    else if (hash.startsWith('/d/') && hash.length > 3) await dashboardPage(gen, decodeURIComponent(hash.slice(3)));
    else if (hash === '/new' || hash.startsWith('/new/')) await newView(gen, hash.slice(5));
    else if (hash === '/catalog') await catalogPage(gen);
    else if (hash === '/access') accessView();
    else if (hash.startsWith('/trace/') && hash.length > 7) await traceView(view, decodeURIComponent(hash.slice(7)));
    else location.hash = '#/';
  } catch (e) {
    if (gen !== routeGen) return;
    if (e instanceof OfflineError) {
      waitingForServer = true;
      fill(view, h('div.empty', h('p', 'Waiting for the server…')));
      return; // conn's change event routes again when it is back
    }
    const ev = errorView(e);
    if (ev) fill(view, ev);
  }
  if (gen === routeGen && msg && msg === notice && hash === '/') {
    const flash = h('p.notice.flash', { role: 'status' }, msg);
    view.prepend(flash);
    setTimeout(() => flash.remove(), 8000);
    notice = '';
  }
}

window.addEventListener('hashchange', route);
document.addEventListener('visibilitychange', () => {
  if (!document.hidden) for (const p of panels.values()) p.wake();
});
// The server's host name, in the header: which machine these numbers are of.
const hostEl = document.getElementById('host');
async function showHost() {
  try {
    const hd = { Accept: 'application/json' };
    if (session.token) hd.Authorization = `Bearer ${session.token}`;
    const res = await fetch('./', { headers: hd, cache: 'no-store' });
    const j = await res.json();
    hostEl.textContent = j.host || '';
    hostEl.hidden = !j.host;
    hostEl.title = j.host ? `the server runs on ${j.host}` : '';
    document.title = j.host ? `${j.host} — Sonde` : 'Sonde — latency analytics';
  } catch (e) {
    // shown when the server answers again
  }
}
conn.addEventListener('change', () => { if (conn.online && hostEl.hidden) showHost(); });

showConn();
showHost();
route();
