// The client of the server's API: one place that knows the scope and token, turns replies
// into values or ApiErrors with a message in words, and notices when the server is gone.
//
// When a request cannot reach the server, the connection goes "offline": every caller's next
// request waits (no storm of failing requests) while one probe retries with backoff (0.5 s
// doubling to 5 s); when the server answers again, everyone resumes. The server keeps its
// instrumentations across a restart, so the views simply carry on.
//
// Panels' refreshes are "background" calls: at most BACKGROUND of them run at once, because
// a browser opens 6 connections per origin over HTTP/1.1 and a refresh may be a long poll
// that the server holds for up to 2 s; what the user does (hover, create, delete) never waits
// behind them.
//
// Every URL is relative to the page, so the UI also works behind a proxy under a path prefix.

const BACKGROUND = 4;

function store() {
  try {
    return window.localStorage; // absent or throwing when storage is blocked
  } catch (e) {
    return null;
  }
}

export const session = {
  scope: (store() && store().getItem('sonde.scope')) || '', // '' is the operator's scope
  token: (store() && store().getItem('sonde.token')) || '',
  save() {
    const s = store();
    if (!s) return;
    s.setItem('sonde.scope', this.scope);
    s.setItem('sonde.token', this.token);
  },
};

export function base() {
  return session.scope ? `ca/customers/${encodeURIComponent(session.scope)}` : 'ca';
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code || '';
  }
}

export class OfflineError extends Error {
  constructor() {
    super('the server cannot be reached');
  }
}

function words(status, j) {
  if (j && j.error && j.error.message) return j.error.message;
  switch (status) {
    case 401: return 'this server asks for a token: set it under "Access"';
    case 403: return 'this token may not use this scope';
    case 404: return 'not found: deleted, reaped after being idle, or never there';
    case 413: return 'the request is too large';
    default: return `the server answered ${status}`;
  }
}

function abortError() {
  return new DOMException('aborted', 'AbortError');
}

// Resolves when f() is true or signal aborts (then rejects); waiters are woken by wake().
function waiting(list, signal) {
  return new Promise((resolve, reject) => {
    const w = { resolve, reject };
    list.push(w);
    if (signal) {
      if (signal.aborted) {
        list.splice(list.indexOf(w), 1);
        reject(abortError());
        return;
      }
      signal.addEventListener('abort', () => {
        const i = list.indexOf(w);
        if (i >= 0) list.splice(i, 1);
        reject(abortError());
      }, { once: true });
    }
  });
}

class Connection extends EventTarget {
  constructor() {
    super();
    this.online = true;
    this.attempt = 0;
    this.nextTry = 0;
    this.probing = false;
    this.waiters = [];
  }

  ready(signal) {
    return this.online ? Promise.resolve() : waiting(this.waiters, signal);
  }

  fine() {
    if (this.online) return;
    this.online = true;
    this.attempt = 0;
    for (const w of this.waiters.splice(0)) w.resolve();
    this.dispatchEvent(new Event('change'));
  }

  lost() {
    if (!this.online) return;
    this.online = false;
    this.dispatchEvent(new Event('change'));
    this.probe();
  }

  async probe() {
    if (this.probing) return;
    this.probing = true;
    while (!this.online) {
      const wait = Math.min(5000, 500 * Math.pow(2, this.attempt++));
      this.nextTry = Date.now() + wait;
      this.dispatchEvent(new Event('tick'));
      await new Promise((r) => setTimeout(r, wait));
      try {
        const res = await fetch('./', { headers: { Accept: 'application/json' }, cache: 'no-store' });
        if (res.status < 500) this.fine();
      } catch (e) {
        // still away
      }
    }
    this.probing = false;
  }
}

export const conn = new Connection();

// A page that asks nothing for a while (a form, the catalog, a paused view) still notices
// the server going away: a small request when nothing was heard for 5 s.
let heard = Date.now();
setInterval(async () => {
  if (!conn.online || Date.now() - heard < 5000 || document.hidden) return;
  try {
    const res = await fetch('./', { headers: { Accept: 'application/json' }, cache: 'no-store' });
    if (res.ok) heard = Date.now();
  } catch (e) {
    conn.lost();
  }
}, 2500);

// At most BACKGROUND background calls at once.
let running = 0;
const queue = [];
async function slot(signal) {
  if (running < BACKGROUND) {
    running++;
    return;
  }
  await waiting(queue, signal);
  running++;
}
function release() {
  running--;
  const w = queue.shift();
  if (w) w.resolve();
}

function headers(json) {
  const hd = { Accept: 'application/json' };
  if (session.token) hd.Authorization = `Bearer ${session.token}`;
  if (json) hd['Content-Type'] = 'application/json';
  return hd;
}

// Query string of params: arrays repeat their name; null, undefined and false are left out.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else q.append(k, v === true ? 'true' : v);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

// One API call under the current scope. path starts with '/' (e.g. '/instrumentations').
// Resolves to the parsed reply (null for 204), rejects with ApiError, OfflineError or an
// AbortError. opts: params, body, signal, background, and root: path is the server's own
// (Zipkin's 'api/v2/...'), not under the scope.
export async function call(method, path, { params, body, signal, background, root } = {}) {
  await conn.ready(signal);
  if (background) await slot(signal);
  let res, text;
  try {
    res = await fetch((root ? '' : base()) + path + query(params), {
      method,
      headers: headers(body !== undefined),
      body: body !== undefined ? JSON.stringify(body) : undefined,
      cache: 'no-store',
      signal,
    });
    text = await res.text();
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    conn.lost();
    throw new OfflineError();
  } finally {
    if (background) release();
  }
  conn.fine();
  heard = Date.now();
  if (res.status === 204) return null;
  let j = null;
  try {
    j = text ? JSON.parse(text) : null;
  } catch (e) {
    j = null;
  }
  if (!res.ok) throw new ApiError(res.status, j && j.error && j.error.code, words(res.status, j));
  return j;
}

export const get = (path, params, signal) => call('GET', path, { params, signal });
// A GET of the server's own routes (Zipkin's query API: 'api/v2/trace/ID').
export const getRoot = (path, params, signal) => call('GET', path, { params, signal, root: true });
// A panel's refresh: queued behind at most BACKGROUND others.
export const getBackground = (path, params, signal) =>
  call('GET', path, { params, signal, background: true });

// Saves url's body (fetched with the session's token) as file name.
export async function download(url, name) {
  const hd = session.token ? { Authorization: `Bearer ${session.token}` } : {};
  const res = await fetch(url, { headers: hd, cache: 'no-store' });
  if (!res.ok) return;
  const obj = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = obj;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(obj), 10000);
}
