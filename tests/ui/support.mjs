// Support of the web UI's browser tests (tests/ui/*.test.mjs, run by `node --test`; CTest
// registers one test per file, see tests/CMakeLists.txt). Plain Node (18 or later) and
// playwright-core driving Debian's Chromium headless:
//
//   import { test } from 'node:test';
//   import { uiSession } from './support.mjs';
//
//   test('the page loads', { timeout: 120_000 }, async (t) => {
//     const ui = await uiSession(t);          // a server, a browser, a page; closed by t.after
//     const resp = await ui.goto('/');
//     ...
//     await ui.screenshot('name.png');        // into SONDE_UI_OUT (default tests/out/ui)
//     ui.assertNoErrors();                    // console errors, page errors, crashes
//   });
//
// or the parts alone: Serve.start() / serve.stop() / serve.restart() (a `sonde serve` process
// on a free loopback port with a fresh data directory), launchBrowser() and openPage().
//
// Environment: SONDE (the sonde binary; else --sonde=PATH among the arguments, else the
// checkout's build/sonde), SONDE_UI_OUT (screenshots and data directories), CHROMIUM (default
// /usr/bin/chromium), SONDE_UI_KEEP=1 (keep the data directories).
//
// Every wait is bounded in time. Nothing listens on anything but loopback: the server is given
// a 127.x.x.x address (anything else is refused here) and the browser is driven over a pipe.
// A server gets a parent-death signal (SIGKILL, through setpriv) and is also killed at exit, so
// a test that crashes leaves no server behind; the browser exits when its pipe closes.
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

// Bounds, in milliseconds.
export const START_MS = 30_000; // a server up to its URL line (ASan, and the agent's BPF load)
export const TERM_MS = 5_000;   // after SIGTERM, before SIGKILL
export const KILL_MS = 5_000;   // after SIGKILL
export const RELISTEN_MS = 10_000; // restart(): retrying a port not yet free again
export const LAUNCH_MS = 30_000;   // the browser up
export const ACTION_MS = 10_000;   // every Playwright action and wait (default of a page)
export const NAV_MS = 15_000;      // every navigation
export const CLOSE_MS = 10_000;    // the browser closed
const LOG_MAX = 256 * 1024;        // what is kept of a server's stdout and stderr

// Rejects with an Error naming what after ms; the timer never keeps the process alive.
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result after ${ms} ms`)), ms);
    timer.unref?.();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Polls fn (sync or async) until it returns a truthy value, which is returned; throws after ms.
export async function waitFor(fn, { ms = ACTION_MS, every = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await withTimeout(Promise.resolve().then(fn), Math.max(1, deadline - Date.now()), what);
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline)
      throw new Error(`${what}: not true after ${ms} ms${last ? ` (last error: ${last.message})` : ''}`);
    await sleep(every);
  }
}

export function outDir() {
  const dir = process.env.SONDE_UI_OUT || path.join(REPO, 'tests/out/ui');
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function sondePath() {
  if (process.env.SONDE) return path.resolve(process.env.SONDE);
  const arg = process.argv.find((a) => a.startsWith('--sonde='));
  if (arg) return path.resolve(arg.slice('--sonde='.length));
  return path.join(REPO, 'build/sonde');
}

// Every server still running, killed if the process exits without stopping them.
const live = new Set();
process.on('exit', () => {
  for (const s of live) {
    try {
      process.kill(s.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

function appendBounded(buf, chunk) {
  const s = buf + chunk;
  return s.length > LOG_MAX ? s.slice(s.length - LOG_MAX) : s;
}

// A `sonde serve` process. Serve.start() resolves once the server printed its URL (it listens
// by then); stop() ends it by its PID; restart() starts it again on the same address and data
// directory (what a user sees when the server is upgraded under an open page).
export class Serve {
  constructor(opts) {
    this.sonde = opts.sonde ?? sondePath();
    this.listen = opts.listen ?? '127.0.0.1:0';
    this.args = opts.args ?? [];
    this.ownDataDir = !opts.dataDir;
    this.dataDir = opts.dataDir ?? null; // made by the first #spawn when not given
    this.child = null;
    this.pid = 0;
    this.url = null;
    this.host = null;
    this.port = 0;
    this.stdout = '';
    this.stderr = '';
    this.exited = null; // {code, signal} of the last process, once it exited
    this.earlier = '';  // log() of the processes before a restart()
    this.exits = [];    // {pid, code, signal} of every process that exited, in order
  }

  // opts: sonde, listen (127.x.x.x:PORT, default port 0: a free one), dataDir (default a fresh
  // one under SONDE_UI_OUT, removed by close()), args (more arguments: '--no-agent', ...),
  // timeoutMs.
  static async start(opts = {}) {
    const s = new Serve(opts);
    try {
      await s.#spawn(opts.timeoutMs ?? START_MS);
    } catch (e) {
      await s.close().catch(() => {});
      throw e;
    }
    return s;
  }

  get running() {
    return this.child !== null && this.exited === null;
  }

  // The server's stderr (its log) and what it printed after the URL, for a failure's message.
  // full: with those of the processes before the last restart().
  log({ full = false } = {}) {
    return (full ? this.earlier : '') +
      `--- sonde serve stderr (pid ${this.pid}) ---\n${this.stderr}` +
      (this.stdout ? `--- stdout (pid ${this.pid}) ---\n${this.stdout}` : '');
  }

  async #spawn(timeoutMs) {
    const m = /^(127(?:\.\d{1,3}){3}):(\d+)$/.exec(this.listen);
    if (!m) throw new Error(`Serve: listen "${this.listen}" is not a 127.x.x.x:PORT address`);
    if (!existsSync(this.sonde)) throw new Error(`Serve: no sonde binary at ${this.sonde} (set SONDE)`);
    if (!this.dataDir) this.dataDir = mkdtempSync(path.join(outDir(), 'data-'));
    const argv = [this.sonde, 'serve', '--listen', this.listen, '--data', this.dataDir, ...this.args];
    const [cmd, ...rest] = setpriv ? [setpriv, '--pdeathsig', 'KILL', '--', ...argv] : argv;
    if (this.child) this.earlier = appendBounded(this.earlier, this.log());
    this.stdout = '';
    this.stderr = '';
    this.exited = null;
    this.url = null;
    const child = spawn(cmd, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.pid = child.pid ?? 0;
    child.on('error', () => {}); // reported by urlLine below; never unhandled later
    const exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exited = { code, signal };
        this.exits.push({ pid: child.pid, code, signal });
        live.delete(this);
        resolve(this.exited);
      });
    });
    this.exitPromise = exited;
    // its pipes closed after the exit: all of its stderr read (or 1 s, if something kept them)
    const closed = new Promise((resolve) => child.once('close', resolve));
    this.drained = () => withTimeout(closed, 1_000, 'sonde serve output').catch(() => {});
    if (this.pid) live.add(this);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => (this.stderr = appendBounded(this.stderr, d)));
    child.stdout.setEncoding('utf8');

    // The first line of stdout is "sonde: serving on http://HOST:PORT/"; the rest is drained
    // (kept, bounded) so that the pipe never fills.
    let first = '';
    const urlLine = new Promise((resolve, reject) => {
      child.once('error', (e) => reject(new Error(`Serve: cannot run ${cmd}: ${e.message}`)));
      child.stdout.on('data', (d) => {
        if (this.url !== null || first.includes('\n')) {
          this.stdout = appendBounded(this.stdout, d);
          return;
        }
        first += d;
        const nl = first.indexOf('\n');
        if (nl < 0) {
          if (first.length > 1024) reject(new Error(`Serve: no URL line: ${JSON.stringify(first)}`));
          return;
        }
        this.stdout = first.slice(nl + 1);
        resolve(first.slice(0, nl));
      });
      exited.then(({ code, signal }) =>
        reject(new Error(`Serve: sonde serve exited (code ${code}, signal ${signal}) before its URL line`)));
    });

    let line;
    try {
      line = await withTimeout(urlLine, timeoutMs, `Serve: URL line of sonde serve (pid ${this.pid})`);
    } catch (e) {
      await this.stop().catch(() => {});
      await this.drained();
      e.message += `\n${this.log()}`;
      throw e;
    }
    const u = /^sonde: serving on (http:\/\/([^/:]+):(\d+)\/)$/.exec(line.trim());
    if (!u) {
      await this.stop().catch(() => {});
      throw new Error(`Serve: unexpected first line ${JSON.stringify(line)}\n${this.log()}`);
    }
    this.url = u[1];
    this.host = u[2];
    this.port = Number(u[3]);
    this.listen = `${this.host}:${this.port}`; // what restart() reuses
  }

  // SIGTERM, then SIGKILL after termMs; resolves with {code, signal}. Throws if the process
  // outlives SIGKILL by killMs. Harmless when not running.
  async stop({ termMs = TERM_MS, killMs = KILL_MS } = {}) {
    if (!this.child || !this.pid) return this.exited; // (pid 0 would signal our group)
    if (this.exited) {
      await this.drained();
      return this.exited;
    }
    const signal = (sig) => {
      try {
        process.kill(this.pid, sig);
      } catch {
        // already gone (exit not yet reported)
      }
    };
    signal('SIGTERM');
    let r;
    try {
      r = await withTimeout(this.exitPromise, termMs, 'stop');
    } catch {
      process.stderr.write(`Serve: pid ${this.pid} still there ${termMs} ms after SIGTERM: SIGKILL\n`);
      signal('SIGKILL');
      r = await withTimeout(this.exitPromise, killMs, `Serve: pid ${this.pid} after SIGKILL`);
    }
    await this.drained(); // the last of its stderr may still be in the pipe
    return r;
  }

  // Stops the server if it runs and starts it again with the same address (host and port) and
  // data directory. The port may briefly stay taken: "cannot listen" is retried for
  // relistenMs.
  async restart({ timeoutMs = START_MS, relistenMs = RELISTEN_MS } = {}) {
    await this.stop();
    const deadline = Date.now() + relistenMs;
    for (;;) {
      try {
        await this.#spawn(timeoutMs);
        return this;
      } catch (e) {
        if (!/cannot listen/.test(this.stderr) || Date.now() >= deadline) throw e;
        await sleep(100);
      }
    }
  }

  // Throws unless every process exited cleanly (code 0: stopped by SIGTERM, no sanitizer
  // report) after the URL line (a process that failed to start has thrown already).
  assertCleanExits() {
    const bad = this.exits.filter((e) => e.code !== 0);
    if (bad.length)
      throw new Error(`Serve: unclean exit ${JSON.stringify(bad)}\n${this.log({ full: true })}`);
  }

  // stop(), then removes the data directory this object created (unless SONDE_UI_KEEP=1).
  // Resolves with stop()'s result.
  async close() {
    try {
      return await this.stop();
    } finally {
      if (this.ownDataDir && this.dataDir && !process.env.SONDE_UI_KEEP)
        rmSync(this.dataDir, { recursive: true, force: true });
    }
  }
}

let playwright;
async function chromiumType() {
  if (!playwright) {
    try {
      playwright = await import('playwright-core');
    } catch (e) {
      throw new Error(`cannot load playwright-core (${e.message}): run scripts/setup, which ` +
        'installs it into node_modules/ at the root of the checkout');
    }
  }
  return playwright.chromium;
}

// Headless Chromium (CHROMIUM, default Debian's /usr/bin/chromium). --no-sandbox: as root
// Chromium refuses to start with its sandbox. The host resolver maps every name but localhost
// and 127.* to nothing, so that a page cannot reach beyond loopback even by mistake.
export async function launchBrowser({ executablePath = process.env.CHROMIUM || '/usr/bin/chromium',
  args = [], timeoutMs = LAUNCH_MS } = {}) {
  if (!existsSync(executablePath))
    throw new Error(`no Chromium at ${executablePath}: scripts/setup installs Debian's chromium`);
  const chromium = await chromiumType();
  return withTimeout(chromium.launch({
    executablePath,
    headless: true,
    timeout: timeoutMs,
    args: [
      '--no-sandbox',
      '--disable-dev-shm-usage',  // containers' /dev/shm is small
      '--disable-gpu',
      '--no-first-run',
      '--no-default-browser-check',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.*',
      ...args,
    ],
  }), timeoutMs + 5_000, 'launching Chromium');
}

// Closes the browser, bounded; Playwright kills the process if it does not go.
export async function closeBrowser(browser, ms = CLOSE_MS) {
  if (browser) await withTimeout(browser.close(), ms, 'closing Chromium');
}

// A new page in a fresh context with bounded default timeouts, and the list of what went wrong
// in it: console errors, uncaught exceptions, crashes. errors is live (appended to as it
// happens); each entry is a string saying what and where.
export async function openPage(browser, { viewport = { width: 1280, height: 800 },
  actionMs = ACTION_MS, navMs = NAV_MS } = {}) {
  const context = await withTimeout(browser.newContext({ viewport }), actionMs, 'new browser context');
  context.setDefaultTimeout(actionMs);
  context.setDefaultNavigationTimeout(navMs);
  const page = await withTimeout(context.newPage(), actionMs, 'new page');
  const errors = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') {
      const loc = msg.location();
      errors.push(`console.error: ${msg.text()}${loc?.url ? ` (${loc.url}:${loc.lineNumber})` : ''}`);
    }
  });
  page.on('pageerror', (err) => errors.push(`page error: ${err.stack || err.message || err}`));
  page.on('crash', () => errors.push('page crashed'));
  return { context, page, errors };
}

// A screenshot of page into SONDE_UI_OUT/name (a .png); returns its path.
export async function screenshot(page, name, { fullPage = true, ms = ACTION_MS } = {}) {
  const file = path.join(outDir(), name.endsWith('.png') ? name : `${name}.png`);
  mkdirSync(path.dirname(file), { recursive: true });
  await withTimeout(page.screenshot({ path: file, fullPage, timeout: ms }), ms + 1_000, `screenshot ${name}`);
  return file;
}

// Writes text next to the screenshots (a page's HTML, a server log...); returns its path.
export function saveText(name, text) {
  const file = path.join(outDir(), name);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
  return file;
}

// Everything a test usually needs, torn down by t.after (node:test's TestContext), failure or
// not: a server, a browser and a page. The server's log is left in SONDE_UI_OUT as
// <test name>.serve.log, and every server process must have exited with code 0 (after
// SIGTERM: no crash, no sanitizer report) unless opts.anyExit (a test that kills it).
// opts: serve (options of Serve.start), browser (of launchBrowser), page (of openPage),
// anyExit.
//
//   ui.serve, ui.browser, ui.context, ui.page, ui.errors
//   await ui.goto(path)          navigates to the server's URL + path, returns the Response
//   await ui.screenshot(name)    into SONDE_UI_OUT
//   ui.assertNoErrors()          no console error, page error or crash so far
export async function uiSession(t, opts = {}) {
  const ui = { serve: null, browser: null, context: null, page: null, errors: [] };
  t.after(async () => {
    const problems = [];
    if (ui.errors.length) t.diagnostic?.(`page errors:\n  ${ui.errors.join('\n  ')}`);
    try {
      await closeBrowser(ui.browser);
    } catch (e) {
      problems.push(e);
    }
    try {
      await ui.serve?.close();
    } catch (e) {
      problems.push(e);
    }
    if (ui.serve) {
      saveText(`${t.name.replace(/[^A-Za-z0-9._-]+/g, '_')}.serve.log`, ui.serve.log({ full: true }));
      try {
        if (!opts.anyExit) ui.serve.assertCleanExits();
      } catch (e) {
        problems.push(e);
      }
    }
    if (problems.length) throw problems[0];
  });
  ui.serve = await Serve.start(opts.serve);
  ui.browser = await launchBrowser(opts.browser);
  Object.assign(ui, await openPage(ui.browser, opts.page));
  ui.goto = (p = '/', o = {}) => ui.page.goto(new URL(p, ui.serve.url).href, o);
  ui.screenshot = (name, o) => screenshot(ui.page, name, o);
  ui.assertNoErrors = () => assert.deepEqual(ui.errors, [], 'errors in the page');
  return ui;
}

// A loop of 2 ms sleeps by a process called name (a copy of /bin/sleep), until stop() kills
// its process group: a workload the agent sees with a known name and latency.
export function startWorkload(name) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'snui-work-'));
  const bin = path.join(dir, name);
  copyFileSync('/bin/sleep', bin);
  const child = spawn('/bin/sh', ['-c', `while :; do "${bin}" 0.002; done`],
    { detached: true, stdio: 'ignore' });
  return {
    stop() {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch (e) {
        // gone already
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// One API call to ui's server: {status, json} (json null for an empty body).
export async function api(ui, method, p, body) {
  const res = await fetch(new URL(p, ui.serve.url), {
    method,
    headers: body ? { 'Content-Type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}
