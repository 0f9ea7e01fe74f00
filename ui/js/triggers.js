// A heatmap panel's flight-recorder triggers (docs/recorder.md, "Triggers"): a "Trigger…"
// form that adds one on the panel's instrumentation (the recording session to snapshot, the
// condition prefilled from the panel: "p99 > 10ms for 3s", or the band of the cell whose
// details are open; the key selected; the minimum interval), and under the heatmap the
// panel's triggers (condition, fires, suppressed, a remove button) and what they fired (time,
// value, key, state, the snapshot's archive to download).
//
// Triggers are the operator's: the box is there only in the operator's scope. Every box on
// the page shares one poller: one GET /ca/recorder/triggers every POLL_MS while a panel that
// shows a box runs and the page is visible (a panel's start and stop subscribe it).

import { ApiError, base, call, download } from './api.js';
import { fill, h } from './dom.js';
import { fmtCount, fmtInput, fmtValue } from './units.js';

const POLL_MS = 3000;
const FIRED_SHOWN = 10; // the newest fired entries a panel lists

// The shared poller: boxes subscribe, each is told the whole list on every answer.
const poll = {
  boxes: new Set(),
  timer: null,
  last: null,
  async tick() {
    this.timer = null;
    if (!this.boxes.size) return;
    if (!document.hidden) {
      try {
        this.last = await call('GET', '/recorder/triggers', { background: true });
        for (const b of this.boxes) b.show(this.last, null);
      } catch (e) {
        if (e.name !== 'AbortError') for (const b of this.boxes) b.show(null, e);
      }
    }
    if (this.boxes.size && !this.timer) this.timer = setTimeout(() => this.tick(), POLL_MS);
  },
  // Asks now (after an add or a removal), and goes on every POLL_MS.
  now() {
    clearTimeout(this.timer);
    this.timer = null;
    this.tick();
  },
  add(b) {
    this.boxes.add(b);
    if (this.last) b.show(this.last, null);
    if (!this.timer) this.now();
  },
  remove(b) {
    this.boxes.delete(b);
  },
};

// The condition a form starts with: the band of the cell whose details are open (chosen:
// {lo, hi}, its bucket's edges in the field's units), else a p99 over 10 ms for a latency, else a rate.
export function defaultCondition(type, chosen) {
  const fmt = (v) => (type && type.unit === 'seconds' ? fmtInput(v, type) : String(Math.round(v)));
  if (chosen && Number.isFinite(chosen.lo) && Number.isFinite(chosen.hi) && chosen.hi > chosen.lo)
    return `count in [${fmt(chosen.lo)}, ${fmt(chosen.hi)}) > 0 for 1s`;
  if (type && type.unit === 'seconds') return 'p99 > 10ms for 3s';
  return 'count > 1000/s for 3s';
}

export class TriggerBox {
  // view: the HeatmapView (its panel, type, selected keys and chosen cell).
  constructor(view) {
    this.view = view;
    this.id = view.panel.inst.id;
    this.button = h('button.small.trigger-open', { type: 'button',
      title: 'snapshot a recording session when this heatmap shows an outlier' }, 'Trigger…');
    this.button.onclick = () => (this.form.hidden ? this.openForm() : this.closeForm());
    this.form = h('form.trigger-form', { hidden: true });
    this.list = h('div.trigger-list', { hidden: true });
    this.el = h('div.hm-triggers', this.form, this.list);
  }

  start() {
    poll.add(this);
  }

  stop() {
    poll.remove(this);
  }

  // The form, its fields filled from the panel now.
  async openForm() {
    const v = this.view;
    const chosen = v.chosenBand && !v.details.hidden ? v.chosenBand : null;
    this.nameIn = h('input', { name: 'trigger-name', type: 'text', size: 12, required: true,
      value: `i${this.id}-${chosen ? 'band' : 'slow'}`, 'aria-label': 'trigger name' });
    this.sessIn = h('select', { name: 'trigger-session', 'aria-label': 'recording session' });
    this.sessNote = h('span.trigger-sess-note');
    this.whenIn = h('input', { name: 'trigger-when', type: 'text', size: 30, required: true,
      value: defaultCondition(v.type, chosen), 'aria-label': 'condition',
      title: 'pP > VALUE [for Ns], count > R[/s] [for Ns], or count in [LO, HI) > C[/s] [for Ns]' });
    this.keyIn = h('input', { name: 'trigger-key', type: 'text', size: 12,
      value: v.selected.length === 1 ? v.selected[0] : '',
      placeholder: v.keyField ? `all ${v.keyField}s` : 'all', 'aria-label': 'key',
      title: 'empty: every key merged; a key: that key alone; *: each key' });
    this.minIn = h('input.num', { name: 'trigger-min-interval', type: 'number', min: 1, max: 86400,
      value: 60, 'aria-label': 'minimum interval in seconds' });
    this.formErr = h('p.error.trigger-error', { role: 'alert', hidden: true });
    const add = h('button.small', { type: 'submit' }, 'Add trigger');
    const cancel = h('button.small', { type: 'button', onclick: () => this.closeForm() }, 'Cancel');
    fill(this.form,
      h('div.controls',
        h('label', 'name ', this.nameIn),
        h('label', 'recording ', this.sessIn), this.sessNote,
        h('label', 'when ', this.whenIn),
        v.keyField ? h('label', `${v.keyField} `, this.keyIn) : null,
        h('label', 'at most every ', this.minIn, ' s'),
        add, cancel),
      this.formErr);
    this.form.onsubmit = (e) => {
      e.preventDefault();
      this.submit();
    };
    this.form.hidden = false;
    this.button.setAttribute('aria-expanded', 'true');
    await this.loadSessions();
  }

  closeForm() {
    this.form.hidden = true;
    this.button.setAttribute('aria-expanded', 'false');
  }

  // The running sessions into the select; none: a button that starts a syscalls session.
  async loadSessions(pick) {
    let sessions = [];
    try {
      const r = await call('GET', '/recorder');
      sessions = (r && r.sessions) || [];
    } catch (e) {
      fill(this.sessNote, h('span.error', ` ${e.message}`));
      return;
    }
    fill(this.sessIn, sessions.map((s) => h('option', { value: s.name },
      `${s.name} (${(s.events || []).join(', ')})`)));
    if (pick) this.sessIn.value = pick;
    this.sessIn.disabled = !sessions.length;
    if (sessions.length) {
      fill(this.sessNote);
      return;
    }
    const start = h('button.small.trigger-start', { type: 'button',
      title: 'start a recording session of system calls (4M per CPU)' }, 'start one (syscalls)');
    start.onclick = async () => {
      start.disabled = true;
      try {
        const name = `rec-${this.id}`;
        await call('POST', '/recorder/sessions', { body: { name, events: ['syscalls'] } });
        await this.loadSessions(name);
      } catch (e) {
        start.disabled = false;
        fill(this.sessNote, start, h('span.error', ` ${e.message}`));
      }
    };
    fill(this.sessNote, h('span.muted', ' no session is running: '), start);
  }

  async submit() {
    const body = { name: this.nameIn.value.trim(), session: this.sessIn.value,
      instrumentation: Number(this.id), when: this.whenIn.value.trim() };
    if (this.keyIn.value !== '') body.key = this.keyIn.value;
    if (this.minIn.value !== '') body['min-interval'] = Number(this.minIn.value);
    if (!body.session) {
      this.formErr.textContent = 'no recording session: start one first';
      this.formErr.hidden = false;
      return;
    }
    try {
      await call('POST', '/recorder/triggers', { body });
      this.formErr.hidden = true;
      this.closeForm();
      poll.now();
    } catch (e) {
      this.formErr.textContent = `Not added: ${e.message}`;
      this.formErr.hidden = false;
    }
  }

  async remove(name) {
    try {
      await call('DELETE', `/recorder/triggers/${encodeURIComponent(name)}`);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) {
        this.view.panel.showError(`Trigger not removed: ${e.message}`);
        return;
      }
    }
    poll.now();
  }

  // The fired entry's value in words: a percentile in the field's units, else a count.
  valueText(f) {
    return /^\s*p/.test(f.condition || '') ? fmtValue(f.value, this.view.type) : fmtCount(f.value);
  }

  // Draws this panel's triggers and their fired entries from the whole list (or err).
  show(all, err) {
    if (err) {
      if (this.list.hidden) return; // nothing shown yet: nothing to say
      fill(this.list, h('p.error', `Triggers: ${err.message}`));
      return;
    }
    const mine = (all || []).filter((t) => String(t.instrumentation) === String(this.id));
    this.list.hidden = !mine.length;
    if (!mine.length) {
      fill(this.list);
      return;
    }
    const fired = mine.flatMap((t) => t.fired || []).sort((a, b) => a.id - b.id).slice(-FIRED_SHOWN).reverse();
    const when = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });
    fill(this.list,
      h('h4', 'Triggers'),
      h('table.details-table.trigger-table',
        h('thead', h('tr', h('th', 'name'), h('th', 'when'), h('th', 'key'), h('th', 'recording'),
          h('th.n', 'fires'), h('th.n', 'suppressed'), h('th'))),
        h('tbody', mine.map((t) => h('tr', { dataset: { trigger: t.name } },
          h('td', t.name), h('td', h('code', t.when)), h('td', t.key === undefined || t.key === null ? '' : t.key),
          h('td', t.session), h('td.n.trigger-fires', String(t.fires)),
          h('td.n.trigger-suppressed', String(t.suppressed)),
          h('td', h('button.small.danger.trigger-remove', { type: 'button', title: `remove trigger ${t.name}`,
            onclick: () => this.remove(t.name) }, 'Remove')))))),
      fired.length
        ? h('table.details-table.fired-table',
          h('thead', h('tr', h('th', 'fired'), h('th', 'trigger'), h('th.n', 'value'), h('th', 'key'),
            h('th', 'state'), h('th', 'snapshot'))),
          h('tbody', fired.map((f) => h('tr', { dataset: { fired: f.id, state: f.state } },
            h('td', when(f.fired_ms)), h('td', f.trigger), h('td.n', this.valueText(f)),
            h('td', f.key === undefined || f.key === null ? '' : f.key),
            h('td', { title: f.error || '' }, f.state),
            h('td', f.state === 'taken' && f.snapshot ? this.archiveLink(f.snapshot) : '')))))
        : h('p.muted', 'nothing fired yet'));
  }

  archiveLink(id) {
    const url = `${base()}/recorder/snapshots/${encodeURIComponent(id)}/archive`;
    const a = h('a.fired-archive', { href: url, title: 'download the snapshot (a tar of its CTF trace)' }, `${id}.tar`);
    a.onclick = (ev) => {
      ev.preventDefault();
      download(url, `${id}.tar`);
    };
    return a;
  }
}
