// The web UI's shell: the header and its connection state, the banner shown while the server
// is away, and the views behind the location's hash:
//   #/            live panels of every instrumentation, and their list
//   #/new[/M.S]   the form to create one (optionally of metric M.S)
//   #/catalog     the metric catalog
//   #/access      scope and token, for servers with tenants

import { ApiError, OfflineError, call, conn, session } from './api.js';
import { catalogView, instTitle, loadCatalog, predText } from './catalog.js';
import { PRESETS, createView } from './create.js';
import { fill, h, sleep } from './dom.js';
import { Panel } from './panel.js';
import { timeBar } from './timectl.js';

const view = document.getElementById('view');
const banner = document.getElementById('banner');
const connState = document.getElementById('conn');
const panels = new Map(); // id → Panel, kept across views so their settings survive
let catalog = null;
let listTimer = null;
let notice = '';

// --- connection ------------------------------------------------------------------------
function showConn() {
  if (conn.online) {
    banner.hidden = true;
    connState.textContent = 'connected';
    connState.className = 'conn ok';
    return;
  }
  const s = Math.max(0, Math.ceil((conn.nextTry - Date.now()) / 1000));
  banner.hidden = false;
  fill(banner, h('strong', 'The server cannot be reached. '),
    `Retrying${s ? ` in ${s} s` : '…'} — the panels carry on when it is back.`);
  connState.textContent = 'reconnecting';
  connState.className = 'conn bad';
}
conn.addEventListener('change', () => {
  showConn();
  if (conn.online) route(); // back: reload what the view shows
});
setInterval(() => { if (!conn.online) showConn(); }, 500);

// --- views -------------------------------------------------------------------------------
function setNav(name) {
  for (const a of document.querySelectorAll('nav a'))
    a.setAttribute('aria-current', a.dataset.nav === name ? 'page' : 'false');
}

function stopPanels() {
  for (const p of panels.values()) p.stop();
  clearInterval(listTimer);
  listTimer = null;
}

async function ensureCatalog() {
  catalog = await loadCatalog(!catalog);
  return catalog;
}

function errorView(e) {
  if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
    location.hash = '#/access';
    notice = e.message;
    return null;
  }
  return h('div.empty', h('p.error', e.message),
    h('button', { type: 'button', onclick: () => route() }, 'Try again'));
}

function listRow(inst) {
  const p = predText(inst.predicate);
  return h('li', { dataset: { id: inst.id } },
    h('a', { href: `#/`, onclick: (e) => {
      e.preventDefault();
      const el = document.getElementById(`panel-${inst.id}`);
      if (el) el.scrollIntoView({ behavior: 'smooth', block: 'start' });
    } }, h('code', `#${inst.id}`), ' ', instTitle(catalog, inst)),
    p ? h('span.muted', ` where ${p}`) : null);
}

function emptyLive() {
  return h('div.empty',
    h('h2', 'Nothing is instrumented yet'),
    h('p', 'Ask a question of this machine\'s kernel. For instance:'),
    h('div.presets', PRESETS.filter((p) => catalog.metrics.some((m) => m.module === p.module && m.stat === p.stat))
      .map((p) => h('button.preset', { type: 'button', onclick: async (ev) => {
        ev.target.disabled = true;
        try {
          await call('POST', '/instrumentations', { body: { module: p.module, stat: p.stat, decomposition: p.decomposition } });
          route();
        } catch (e) {
          ev.target.disabled = false;
          fill(ev.target.parentNode.nextSibling, e.message);
        }
      } }, p.label))),
    h('p.error', { role: 'alert' }),
    h('p', 'or ', h('a', { href: '#/new' }, 'build your own'), ' from ', h('a', { href: '#/catalog' }, 'the catalog'), '.'));
}

async function liveView() {
  setNav('live');
  const cat = await ensureCatalog();
  const list = h('ul.inst-list', { 'aria-label': 'instrumentations' });
  const holder = h('div.panels');
  const count = h('span.muted');
  fill(view, h('div.live-head', timeBar(), h('a.button', { href: '#/new' }, '+ New instrumentation')),
    h('details.inst-box', { open: true }, h('summary', 'Instrumentations ', count), list), holder);

  const gone = (p, why) => {
    panels.delete(p.inst.id);
    p.el.replaceWith(h('p.notice', `Instrumentation #${p.inst.id} ${why === 'deleted' ? 'was deleted' : 'no longer exists (deleted elsewhere, or reaped after being idle)'}.`));
    sync();
  };
  const cloned = () => sync();

  async function sync() {
    let insts;
    try {
      insts = await call('GET', '/instrumentations');
    } catch (e) {
      if (e instanceof OfflineError) return;
      const ev = errorView(e);
      if (ev) fill(holder, ev);
      return;
    }
    if (!view.contains(holder)) return;
    insts.sort((a, b) => Number(a.id) - Number(b.id));
    const ids = new Set(insts.map((i) => i.id));
    for (const [id, p] of panels)
      if (!ids.has(id)) {
        p.stop();
        panels.delete(id);
        p.el.remove();
      }
    for (const inst of insts) {
      let p = panels.get(inst.id);
      if (!p) {
        p = new Panel(cat, inst, { onGone: gone, onCloned: cloned });
        panels.set(inst.id, p);
      }
      if (p.el.parentNode !== holder) holder.prepend(p.el);
      p.start();
    }
    // newest first
    for (const inst of insts) holder.prepend(panels.get(inst.id).el);
    for (const n of [...holder.children]) if (!n.classList.contains('panel') && !n.classList.contains('notice')) n.remove();
    fill(list, insts.slice().reverse().map(listRow));
    count.textContent = `(${insts.length})`;
    if (insts.length === 0 && !holder.querySelector('.empty')) holder.append(emptyLive());
  }
  await sync();
  listTimer = setInterval(sync, 5000);
}

async function newView(metric) {
  setNav('new');
  const cat = await ensureCatalog();
  fill(view, h('h1', 'New instrumentation'),
    createView(cat, { initial: metric, onCreated: (inst) => {
      location.hash = '#/';
      notice = `Instrumentation #${inst.id} created.`;
    } }));
}

async function catalogPage() {
  setNav('catalog');
  const cat = await ensureCatalog();
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
  stopPanels();
  const hash = location.hash.replace(/^#/, '') || '/';
  const msg = notice;
  try {
    if (hash === '/' || hash === '') await liveView();
    else if (hash.startsWith('/new')) await newView(hash.split('/')[2]);
    else if (hash === '/catalog') await catalogPage();
    else if (hash === '/access') accessView();
    else location.hash = '#/';
  } catch (e) {
    if (e instanceof OfflineError) {
      fill(view, h('div.empty', h('p', 'Waiting for the server…')));
      return; // conn's change event routes again when it is back
    }
    const ev = errorView(e);
    if (ev) fill(view, ev);
  }
  if (msg && msg === notice && hash === '/') {
    view.prepend(h('p.notice.flash', msg));
    notice = '';
    await sleep(0);
  }
}

window.addEventListener('hashchange', route);
window.addEventListener('resize', () => { for (const p of panels.values()) p.kick(); });
document.addEventListener('visibilitychange', () => {
  if (!document.hidden) for (const p of panels.values()) p.kick();
});
showConn();
route();
