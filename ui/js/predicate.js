// The predicate builder: and/or groups of "field operator value" rows, with operators and
// value inputs that fit the field (discrete fields: == and != and, for containers, "under";
// numeric ones also < <= > >=, with values typed in the field's units: "2ms", "4KiB").
// value() gives CA's predicate object ({} for none) or throws an Error naming the bad row;
// check() marks each row whose value does not read (an inline error under it) and returns the
// first problem, or ''.

import { fieldLabel, fieldType, isNumeric } from './catalog.js';
import { h } from './dom.js';
import { parseValue } from './units.js';

const OPS_NUMERIC = [['eq', '=='], ['ne', '!='], ['lt', '<'], ['le', '<='], ['gt', '>'], ['ge', '>=']];
const OPS_DISCRETE = [['eq', '=='], ['ne', '!=']];

function hintOf(t) {
  if (!t || t.arity !== 'numeric') return 'text';
  if (t.unit === 'seconds') return 'e.g. 2ms, 150us';
  if (t.unit === 'bytes') return 'e.g. 4KiB, 1MiB';
  return 'a number';
}

export class PredicateBuilder {
  constructor(cat, metric) {
    this.cat = cat;
    this.metric = metric;
    this.root = this.group('and');
    this.el = h('div.pred', this.root.el);
  }

  setMetric(metric) {
    this.metric = metric;
    const keep = new Set(metric ? metric.fields : []);
    for (const row of this.el.querySelectorAll('.pred-row'))
      if (!keep.has(row.querySelector('.pred-field').value)) row.remove();
      else row.refill();
  }

  fields() {
    return this.metric ? this.metric.fields : [];
  }

  group(op) {
    const sel = h('select.pred-join', { 'aria-label': 'how conditions combine' },
      h('option', { value: 'and' }, 'all of'), h('option', { value: 'or' }, 'any of'));
    sel.value = op;
    const body = h('div.pred-body');
    const el = h('fieldset.pred-group',
      h('legend', 'Match ', sel, ' these'),
      body,
      h('div.pred-actions',
        h('button.small.pred-add', { type: 'button', onclick: () => {
          body.append(this.row());
          this.el.dispatchEvent(new Event('change', { bubbles: true }));
        } },
          '+ condition'),
        h('button.small.pred-add-group', { type: 'button',
          onclick: () => {
            const g = this.group(op === 'and' ? 'or' : 'and');
            g.el.append(h('button.small.pred-remove', { type: 'button', title: 'remove group',
              onclick: () => g.el.remove() }, '×'));
            body.append(g.el);
          } }, '+ group')));
    el.node = { el, sel, body };
    return el.node;
  }

  row() {
    const fieldSel = h('select.pred-field', { 'aria-label': 'field' });
    const opSel = h('select.pred-op', { 'aria-label': 'operator' });
    const value = h('input.pred-value', { type: 'text', 'aria-label': 'value', required: true });
    const err = h('span.pred-error', { hidden: true, role: 'alert' });
    const row = h('div.pred-row', fieldSel, opSel, value,
      h('button.small.pred-remove', { type: 'button', title: 'remove condition',
        onclick: () => {
          row.remove();
          this.el.dispatchEvent(new Event('change', { bubbles: true })); // the form re-checks
        } }, '×'), err);
    row.err = err;
    const setOps = () => {
      const f = fieldSel.value;
      const prev = opSel.value;
      const ops = isNumeric(this.cat, f) ? OPS_NUMERIC
        : f === 'container' ? [...OPS_DISCRETE, ['under', 'under']] : OPS_DISCRETE;
      opSel.replaceChildren(...ops.map(([v, t]) => h('option', { value: v }, t)));
      if (ops.some(([v]) => v === prev)) opSel.value = prev;
      value.placeholder = f === 'container' ? 'e.g. /system.slice' : hintOf(fieldType(this.cat, f));
    };
    row.refill = () => {
      const prev = fieldSel.value;
      fieldSel.replaceChildren(...this.fields().map((f) =>
        h('option', { value: f }, `${f} — ${fieldLabel(this.cat, f)}`)));
      if (this.fields().includes(prev)) fieldSel.value = prev;
      setOps();
    };
    fieldSel.addEventListener('change', setOps);
    row.refill();
    return row;
  }

  // The predicate of a group element, or null when it holds no condition.
  groupValue(groupEl) {
    const body = groupEl.querySelector(':scope > .pred-body');
    const op = groupEl.querySelector(':scope > legend .pred-join').value;
    const parts = [];
    for (const child of body.children) {
      const v = child.classList.contains('pred-row') ? this.rowValue(child) : this.groupValue(child);
      if (v) parts.push(v);
    }
    if (parts.length === 0) return null;
    return parts.length === 1 ? parts[0] : { [op]: parts };
  }

  rowValue(row) {
    const f = row.querySelector('.pred-field').value;
    const op = row.querySelector('.pred-op').value;
    const text = row.querySelector('.pred-value').value.trim();
    if (!f) return null;
    if (text === '') throw new Error(`the condition on ${f} needs a value`);
    if (!isNumeric(this.cat, f)) return { [op]: [f, text] };
    const v = parseValue(text, fieldType(this.cat, f));
    if (!Number.isFinite(v) || v < 0)
      throw new Error(`"${text}" is not a value of ${f} (${hintOf(fieldType(this.cat, f))})`);
    return { [op]: [f, Math.round(v)] }; // the kernel's values are integers
  }

  value() {
    return this.groupValue(this.root.el) || {};
  }

  // Marks the rows whose value does not read, and says why under each (an empty value is not
  // marked: the row is being filled in). Returns the first problem of any row, or ''.
  check() {
    let first = '';
    for (const row of this.el.querySelectorAll('.pred-row')) {
      let why = '';
      try {
        this.rowValue(row);
      } catch (e) {
        why = e.message;
      }
      const typed = row.querySelector('.pred-value').value.trim() !== '';
      row.classList.toggle('bad', !!why && typed);
      row.querySelector('.pred-value').setAttribute('aria-invalid', String(!!why && typed));
      row.err.textContent = typed ? why : '';
      row.err.hidden = !why || !typed;
      if (why && !first) first = why;
    }
    return first;
  }
}
