// Dashboards: named views saved on the server (`{base}/dashboards/NAME`, docs/api.md
// "Dashboards"), each a grid of panels the user arranges: moved (dragged by the handle, the
// arrow keys on it, or the ◀ ▶ buttons) and sized (1 to 3 columns wide, 1 to 3 steps high).
// Every change of the layout, and of what a panel draws (its keys, mode, y scale and range),
// is saved by itself, a moment later.
//
// A panel names its instrumentation by id and keeps its definition: an instrumentation
// deleted or reaped meanwhile can be created again from the dashboard, in one click.
//
//   dashboardList()        the #/dashboards view: the scope's dashboards, and a form for a new one
//   new Dashboard(cat, name, urlState)   the #/d/NAME view; .load(), .el, .panels(), .stop()

import { ApiError, call } from './api.js';
import { instTitle } from './catalog.js';
import { PRESETS, presetBody } from './create.js';
import { fill, h } from './dom.js';
import { Panel } from './panel.js';
import { timeBar } from './timectl.js';

const NAME_RE = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$/;
export const MAX_PANELS = 24;
const SAVE_MS = 400;

const path = (name) => `/dashboards/${encodeURIComponent(name)}`;

// What it takes to create an instrumentation again.
function definitionOf(inst) {
  const d = { module: inst.module, stat: inst.stat };
  for (const k of ['decomposition', 'predicate', 'granularity', 'retention-time', 'idle-max', 'persist-data'])
    if (inst[k] !== undefined) d[k] = inst[k];
  if (d.decomposition && !d.decomposition.length) delete d.decomposition;
  if (d.predicate && !Object.keys(d.predicate).length) delete d.predicate;
  return d;
}

// --- the list --------------------------------------------------------------------------------
export async function dashboardList(onOpen) {
  const list = await call('GET', '/dashboards');
  const name = h('input', { name: 'dash-name', required: true, maxLength: 64, size: 18,
    pattern: '[A-Za-z0-9_\\-][A-Za-z0-9._\\-]*', placeholder: 'e.g. web-latency',
    'aria-describedby': 'dash-name-hint' });
  const title = h('input', { name: 'dash-title', maxLength: 200, size: 28, placeholder: 'optional' });
  const err = h('p.error', { role: 'alert', hidden: true });
  const form = h('form.dash-new', { novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    err.hidden = true;
    const n = name.value.trim();
    if (!NAME_RE.test(n)) {
      err.textContent = 'A name is 1 to 64 letters, digits, "-", "_" or ".", not starting with ".".';
      err.hidden = false;
      return;
    }
    try {
      await call('GET', path(n));
      err.textContent = `There is a dashboard called "${n}" already.`;
      err.hidden = false;
      return;
    } catch (e2) {
      if (!(e2 instanceof ApiError && e2.status === 404)) {
        err.textContent = e2.message;
        err.hidden = false;
        return;
      }
    }
    try {
      const body = { panels: [] };
      if (title.value.trim()) body.title = title.value.trim();
      await call('PUT', path(n), { body });
      onOpen(n);
    } catch (e2) {
      err.textContent = `Not created: ${e2.message}`;
      err.hidden = false;
    }
  } },
  h('label.field', h('span.field-label', 'Name'), name,
    h('small.hint#dash-name-hint', 'letters, digits, "-", "_", "."; it is in the link')),
  h('label.field', h('span.field-label', 'Title'), title),
  h('div.actions', h('button.primary', { type: 'submit' }, 'Create dashboard')), err);
  return h('div.dash-list',
    list.length ? h('ul.dash-items', list.map((d) => h('li', { dataset: { name: d.name } },
      h('a', { href: `#/d/${encodeURIComponent(d.name)}` }, d.title || d.name),
      h('span.muted', ` ${d.name} · ${d.npanels} ${d.npanels === 1 ? 'panel' : 'panels'}`))))
      : h('p.muted', 'No dashboards yet. A dashboard keeps panels you choose, arranged as you like, under a name you can link to.'),
    h('h2', 'New dashboard'), form);
}

// --- one dashboard ---------------------------------------------------------------------------
export class Dashboard {
  // urlState(id): the view state the page's URL gives instrumentation id, or null.
  constructor(cat, name, { urlState, onChange, onDeleted }) {
    this.cat = cat;
    this.name = name;
    this.urlState = urlState;
    this.onChange = onChange;
    this.onDeleted = onDeleted;
    this.cells = []; // {spec: {instrumentation, definition, w, h, options}, el, panel}
    this.insts = new Map();
    this.saved = '';
    this.stopped = false;
    this.grid = h('div.dash-grid', { role: 'list', 'aria-label': 'panels' });
    this.status = h('span.dash-save.muted', { role: 'status' });
    this.addSel = h('select', { name: 'add-panel', 'aria-label': 'instrumentation to add' });
    this.addErr = h('span.error', { role: 'alert' });
    this.el = h('div.dashboard');
  }

  panels() {
    return this.cells.map((c) => c.panel).filter(Boolean);
  }

  async load() {
    const doc = await call('GET', path(this.name));
    await this.refreshInsts();
    this.title = doc.title || this.name;
    for (const spec of doc.panels || []) this.cells.push({ spec: { ...spec, options: spec.options || {} } });
    this.saved = JSON.stringify(this.doc());
    const addBtn = h('button.small', { type: 'button', onclick: () => this.add() }, 'Add panel');
    const copy = h('button.small', { type: 'button', title: 'a link to this view: its time, keys and scales' }, 'Copy link');
    copy.onclick = async () => {
      this.linkOut.value = location.href;
      this.linkOut.hidden = false;
      this.linkOut.select();
      try {
        await navigator.clipboard.writeText(location.href);
        copy.textContent = 'Link copied';
      } catch (e) {
        copy.textContent = 'Copy the link below';
      }
      setTimeout(() => { copy.textContent = 'Copy link'; }, 3000);
    };
    this.linkOut = h('input.dash-link', { readOnly: true, hidden: true, 'aria-label': 'link to this view' });
    const del = h('button.small.danger', { type: 'button' }, 'Delete dashboard');
    del.onclick = async () => {
      if (!window.confirm(`Delete the dashboard "${this.title}"? Its instrumentations stay.`)) return;
      try {
        await call('DELETE', path(this.name));
        this.stopped = true; // nothing pending is saved: that would make it again
        clearTimeout(this.saveTimer);
        this.saveTimer = null;
        this.onDeleted();
      } catch (e) {
        this.status.textContent = `Not deleted: ${e.message}`;
      }
    };
    // the title, renamed in place: Enter or leaving the field keeps it, Escape does not
    const heading = h('h1', this.title);
    const titleIn = h('input.dash-title-in', { name: 'title', maxLength: 200, hidden: true,
      'aria-label': 'dashboard title' });
    const rename = h('button.small', { type: 'button', name: 'rename' }, 'Rename');
    const endRename = (keep) => {
      if (titleIn.hidden) return;
      const t = titleIn.value.trim();
      if (keep && t) {
        this.title = t;
        heading.textContent = t;
        this.save(0);
      }
      titleIn.hidden = true;
      heading.hidden = false;
      rename.focus();
    };
    rename.onclick = () => {
      titleIn.value = this.title;
      heading.hidden = true;
      titleIn.hidden = false;
      titleIn.focus();
      titleIn.select();
    };
    titleIn.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') endRename(true);
      else if (e.key === 'Escape') endRename(false);
    });
    titleIn.addEventListener('blur', () => endRename(true));
    fill(this.el,
      h('div.dash-head',
        h('div', heading, titleIn, h('div.muted.dash-name', h('a', { href: '#/dashboards' }, 'Dashboards'), ` / ${this.name}`)),
        h('div.dash-actions', this.status, rename, copy, del)),
      h('div.live-head', timeBar(),
        h('span.dash-add', this.addSel, addBtn, this.addErr)),
      this.linkOut,
      this.grid);
    this.fillAdd();
    this.render();
    // what the panels show now (the link's view of them, if it names one) is not a change to
    // save: only what the user changes is
    this.saved = JSON.stringify(this.doc());
  }

  async refreshInsts() {
    const insts = await call('GET', '/instrumentations');
    this.insts = new Map(insts.map((i) => [String(i.id), i]));
  }

  fillAdd() {
    const on = new Set(this.cells.map((c) => c.spec.instrumentation));
    const free = [...this.insts.values()].filter((i) => !on.has(String(i.id)))
      .sort((a, b) => Number(b.id) - Number(a.id));
    fill(this.addSel,
      free.length ? h('optgroup', { label: 'Instrumentations' },
        free.map((i) => h('option', { value: `id:${i.id}` }, `#${i.id} ${instTitle(this.cat, i)}`))) : null,
      h('optgroup', { label: 'New, from a starting point' },
        PRESETS.filter((p) => this.cat.metrics.some((m) => m.module === p.module && m.stat === p.stat))
          .map((p, i) => h('option', { value: `preset:${PRESETS.indexOf(p)}` }, p.label))));
  }

  async add() {
    this.addErr.textContent = '';
    if (this.cells.length >= MAX_PANELS) {
      this.addErr.textContent = `A dashboard holds at most ${MAX_PANELS} panels.`;
      return;
    }
    const v = this.addSel.value;
    let inst;
    try {
      if (v.startsWith('preset:')) {
        const p = PRESETS[Number(v.slice(7))];
        inst = await call('POST', '/instrumentations',
          { body: presetBody(p) });
        this.insts.set(String(inst.id), inst);
      } else {
        await this.refreshInsts();
        inst = this.insts.get(v.slice(3));
      }
    } catch (e) {
      this.addErr.textContent = `Not added: ${e.message}`;
      return;
    }
    if (!inst) {
      this.addErr.textContent = 'That instrumentation is gone.';
      this.fillAdd();
      return;
    }
    this.cells.push({ spec: { instrumentation: String(inst.id), definition: definitionOf(inst), w: 1, h: 1, options: {} } });
    this.fillAdd();
    this.render();
    this.save(0);
  }

  // The document as the server keeps it.
  doc() {
    return {
      title: this.title,
      panels: this.cells.map((c) => {
        const s = { w: c.spec.w || 1, h: c.spec.h || 1 };
        if (c.spec.instrumentation) s.instrumentation = c.spec.instrumentation;
        if (c.spec.definition) s.definition = c.spec.definition;
        s.options = c.panel && c.panel.heatmap ? c.panel.viewState() : c.spec.options || {};
        return s;
      }),
    };
  }

  // Saves a moment later (ms), once for a burst of changes, unless nothing changed.
  save(ms = SAVE_MS) {
    clearTimeout(this.saveTimer);
    this.saveTimer = setTimeout(async () => {
      if (this.stopped) return;
      const doc = this.doc();
      const text = JSON.stringify(doc);
      if (text === this.saved) return;
      this.status.textContent = 'Saving…';
      try {
        await call('PUT', path(this.name), { body: doc });
        this.saved = text;
        this.status.textContent = 'Saved';
        this.status.dataset.saved = String(Date.now());
      } catch (e) {
        this.status.textContent = `Not saved: ${e.message}`;
      }
    }, ms);
  }

  // Builds the cells not built yet and puts every cell in order.
  render() {
    for (const c of this.cells) if (!c.el) this.build(c);
    const want = this.cells.map((c) => c.el);
    want.forEach((el, i) => {
      if (this.grid.children[i] !== el) this.grid.insertBefore(el, this.grid.children[i] || null);
    });
    while (this.grid.children.length > want.length) this.grid.lastElementChild.remove();
    this.cells.forEach((c, i) => this.layout(c, i));
    if (!this.cells.length)
      this.grid.append(h('p.muted.dash-empty', 'No panels yet: add one above.'));
    if (this.onChange) this.onChange();
  }

  layout(c, i) {
    const { w = 1, h: ht = 1 } = c.spec;
    c.el.dataset.w = String(w);
    c.el.dataset.h = String(ht);
    c.el.dataset.index = String(i);
    c.el.style.gridColumn = `span ${w}`;
    c.earlier.disabled = i === 0;
    c.later.disabled = i === this.cells.length - 1;
    for (const b of c.wBtns) b.setAttribute('aria-pressed', String(Number(b.value) === w));
    for (const b of c.hBtns) b.setAttribute('aria-pressed', String(Number(b.value) === ht));
    if (c.panel && c.panel.view.setHeight) c.panel.view.setHeight(ht);
  }

  move(c, to) {
    const from = this.cells.indexOf(c);
    if (to < 0 || to >= this.cells.length || to === from) return;
    const focused = document.activeElement;
    this.cells.splice(from, 1);
    this.cells.splice(to, 0, c);
    this.render();
    if (focused && c.el.contains(focused) && !focused.disabled) focused.focus();
    else c.handle.focus();
    this.save();
  }

  build(c) {
    const id = c.spec.instrumentation;
    const seg = (label, values, set) => values.map((v) => {
      const b = h('button.seg', { type: 'button', value: v, title: `${label} ${v}` }, String(v));
      b.onclick = () => set(v);
      return b;
    });
    c.handle = h('button.drag-handle', { type: 'button', draggable: true,
      title: 'drag to move, or use the arrow keys', 'aria-label': 'move this panel (arrow keys)' }, '⠿');
    c.earlier = h('button.small', { type: 'button', name: 'earlier', title: 'move earlier' }, '◀');
    c.later = h('button.small', { type: 'button', name: 'later', title: 'move later' }, '▶');
    c.earlier.onclick = () => this.move(c, this.cells.indexOf(c) - 1);
    c.later.onclick = () => this.move(c, this.cells.indexOf(c) + 1);
    c.wBtns = seg('width', [1, 2, 3], (v) => { c.spec.w = v; this.render(); this.save(); });
    c.hBtns = seg('height', [1, 2, 3], (v) => { c.spec.h = v; this.render(); this.save(); });
    const remove = h('button.small', { type: 'button', name: 'remove', title: 'take this panel off the dashboard (the instrumentation stays)' }, 'Remove');
    remove.onclick = () => {
      if (c.panel) c.panel.stop();
      this.cells.splice(this.cells.indexOf(c), 1);
      this.fillAdd();
      this.render();
      this.save(0);
    };
    c.handle.addEventListener('keydown', (e) => {
      const d = { ArrowLeft: -1, ArrowUp: -1, ArrowRight: 1, ArrowDown: 1 }[e.key];
      if (!d) return;
      e.preventDefault();
      this.move(c, this.cells.indexOf(c) + d);
    });
    c.handle.addEventListener('dragstart', (e) => {
      this.dragging = c;
      e.dataTransfer.effectAllowed = 'move';
      e.dataTransfer.setData('text/plain', String(id));
      if (c.el) e.dataTransfer.setDragImage(c.el, 20, 20);
      c.el.classList.add('dragging');
    });
    c.handle.addEventListener('dragend', () => {
      this.dragging = null;
      c.el.classList.remove('dragging');
      for (const x of this.grid.querySelectorAll('.drop-target')) x.classList.remove('drop-target');
    });
    const tools = h('div.dash-tools',
      c.handle, c.earlier, c.later,
      h('span.tool-label', 'width'), h('span.seg-group', c.wBtns),
      h('span.tool-label', 'height'), h('span.seg-group', c.hBtns),
      remove);
    c.body = h('div.dash-body');
    c.el = h('div.dash-cell', { role: 'listitem', dataset: { id } }, tools, c.body);
    c.el.addEventListener('dragover', (e) => {
      if (!this.dragging || this.dragging === c) return;
      e.preventDefault();
      c.el.classList.add('drop-target');
    });
    c.el.addEventListener('dragleave', () => c.el.classList.remove('drop-target'));
    c.el.addEventListener('drop', (e) => {
      e.preventDefault();
      c.el.classList.remove('drop-target');
      if (this.dragging && this.dragging !== c) this.move(this.dragging, this.cells.indexOf(c));
    });
    this.attach(c);
  }

  // The cell's panel, or a note when its instrumentation is gone.
  attach(c) {
    const id = c.spec.instrumentation;
    const inst = id ? this.insts.get(id) : null;
    if (!inst) {
      this.gone(c, 'gone');
      return;
    }
    c.panel = new Panel(this.cat, inst, {
      onGone: (p, why) => {
        p.stop();
        c.panel = null;
        this.insts.delete(id);
        this.gone(c, why);
        this.fillAdd();
      },
      onCloned: async (clone) => {
        this.insts.set(String(clone.id), clone);
        const at = this.cells.indexOf(c) + 1;
        this.cells.splice(at, 0, { spec: { instrumentation: String(clone.id), definition: definitionOf(clone),
          w: c.spec.w, h: c.spec.h, options: c.panel ? c.panel.viewState() : {} } });
        this.render();
        this.save(0);
      },
      onChange: () => {
        this.save();
        if (this.onChange) this.onChange();
      },
    });
    c.panel.applyState(c.spec.options);
    c.panel.applyState(this.urlState(id));
    fill(c.body, c.panel.el);
    if (!this.stopped) c.panel.start();
  }

  gone(c, why) {
    const id = c.spec.instrumentation;
    const def = c.spec.definition;
    const err = h('span.error', { role: 'alert' });
    const again = def ? h('button.small', { type: 'button', name: 'recreate' }, 'Create it again') : null;
    if (again) {
      again.onclick = async () => {
        again.disabled = true;
        try {
          const inst = await call('POST', '/instrumentations', { body: def });
          this.insts.set(String(inst.id), inst);
          c.spec.instrumentation = String(inst.id);
          c.el.dataset.id = String(inst.id);
          this.attach(c);
          this.fillAdd();
          this.save(0);
        } catch (e) {
          err.textContent = `Not created: ${e.message}`;
          again.disabled = false;
        }
      };
    }
    fill(c.body, h('div.notice.dash-gone',
      h('p', `Instrumentation #${id} ${why === 'deleted' ? 'was deleted' : 'no longer exists (deleted elsewhere, or reaped after being idle)'}.`),
      again, ' ', err));
  }

  stop() {
    const pending = this.saveTimer && !this.stopped;
    this.stopped = true;
    for (const p of this.panels()) p.stop();
    // what is pending is saved now
    if (pending) {
      clearTimeout(this.saveTimer);
      const doc = this.doc();
      if (JSON.stringify(doc) !== this.saved) call('PUT', path(this.name), { body: doc }).catch(() => {});
    }
  }
}
