// How `sonde serve` serves the UI's files (src/api/ui.c), over plain HTTP: types, the
// Content-Security-Policy, ETags and 304s, JSON for clients that ask for it at /, names that
// are refused, and --ui-dir serving a directory from disk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { REPO, Serve } from './support.mjs';

const get = (s, p, headers = {}) => fetch(new URL(p, s.url), { headers });

// A request line sent as is (fetch would normalise "..").
function raw(s, line) {
  return new Promise((resolve, reject) => {
    const c = net.connect(s.port, s.host, () => c.end(`${line}\r\nHost: x\r\nConnection: close\r\n\r\n`));
    let out = '';
    c.setTimeout(5000, () => c.destroy(new Error('timeout')));
    c.on('data', (d) => { out += d; });
    c.on('end', () => resolve(Number(out.split(' ')[1])));
    c.on('error', reject);
  });
}

test('the compiled-in UI', { timeout: 60_000 }, async (t) => {
  const s = await Serve.start({ args: ['--no-agent'] });
  t.after(() => s.close());

  const index = await get(s, '/');
  assert.equal(index.status, 200);
  assert.equal(index.headers.get('content-type'), 'text/html; charset=utf-8');
  const csp = index.headers.get('content-security-policy');
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /img-src 'self' data:/);
  assert.equal(index.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(index.headers.get('cache-control'), 'no-cache');
  // the binary carries exactly the checkout's files
  assert.equal(await index.text(), readFileSync(path.join(REPO, 'ui/index.html'), 'utf8'));
  // the page is at / only: its URLs are relative to it
  assert.equal((await get(s, '/ui/index.html')).status, 404);

  const js = await get(s, '/ui/js/main.js');
  assert.equal(js.status, 200);
  assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.equal(await js.text(), readFileSync(path.join(REPO, 'ui/js/main.js'), 'utf8'));
  assert.equal((await get(s, '/ui/sonde.css')).headers.get('content-type'), 'text/css; charset=utf-8');
  assert.equal((await get(s, '/ui/icon.svg')).headers.get('content-type'), 'image/svg+xml');

  // revalidation: the ETag answers 304 with no body, another one 200
  const etag = js.headers.get('etag');
  assert.match(etag, /^"[0-9a-f]{16}"$/);
  const again = await get(s, '/ui/js/main.js', { 'If-None-Match': etag });
  assert.equal(again.status, 304);
  assert.equal(await again.text(), '');
  assert.equal((await get(s, '/ui/js/main.js', { 'If-None-Match': '"0000000000000000"' })).status, 200);

  // a client asking for JSON at / gets the server's description, not the page
  const j = await get(s, '/', { Accept: 'application/json' });
  // (with the host's name: a loopback client of a server without tenants may call it)
  assert.deepEqual(await j.json(), { name: 'sonde', api: '/ca', metrics: '/metrics', host: os.hostname() });

  for (const p of ['/ui/nope.js', '/ui/', '/ui/js/', '/ui/.hidden', '/ui/js/../../CMakeLists.txt',
    '/ui/a;b'])
    assert.equal((await get(s, p)).status, 404, p);
  // an encoded NUL is refused before any route (docs/operations.md)
  assert.equal((await get(s, '/ui/a%00b')).status, 400);
  assert.equal(await raw(s, 'GET /ui/../docs/api.md HTTP/1.1'), 404);
  assert.equal(await raw(s, 'GET /ui/js/../../../etc/passwd HTTP/1.1'), 404);
  // only GET and HEAD
  assert.equal((await fetch(new URL('/ui/index.html', s.url), { method: 'POST', body: 'x' })).status, 404);
  const head = await fetch(new URL('/ui/sonde.css', s.url), { method: 'HEAD' });
  assert.equal(head.status, 200);
  // the API document is one of the compiled-in files too
  assert.equal(await (await get(s, '/ca/docs')).text(), readFileSync(path.join(REPO, 'docs/api.md'), 'utf8'));
});

test('--ui-dir serves a directory from disk, uncached', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'snui-dir-'));
  mkdirSync(path.join(dir, 'js'));
  writeFileSync(path.join(dir, 'index.html'), '<title>one</title>');
  writeFileSync(path.join(dir, 'js', 'x.js'), 'export const x = 1;');
  writeFileSync(path.join(dir, '.secret'), 'no');
  const s = await Serve.start({ args: ['--no-agent', '--ui-dir', dir] });
  t.after(async () => {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  });
  let r = await get(s, '/');
  assert.equal(await r.text(), '<title>one</title>');
  assert.equal(r.headers.get('cache-control'), 'no-store');
  assert.equal(r.headers.get('etag'), null);
  assert.match(r.headers.get('content-security-policy'), /script-src 'self'/);
  writeFileSync(path.join(dir, 'index.html'), '<title>two</title>');
  assert.equal(await (await get(s, '/')).text(), '<title>two</title>'); // edited, no restart
  r = await get(s, '/ui/js/x.js');
  assert.equal(r.headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.equal(await r.text(), 'export const x = 1;');
  assert.equal((await get(s, '/ui/.secret')).status, 404);
  assert.equal((await get(s, '/ui/missing.js')).status, 404);
  assert.equal(await raw(s, 'GET /ui/../../etc/passwd HTTP/1.1'), 404);
});
