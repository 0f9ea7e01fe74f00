// Support of the span-ingest tests (tests/trace/*.test.mjs, run by `node --test`; CTest registers
// one test per file, trace_<stem>, see tests/CMakeLists.txt). The server is the web UI tests'
// Serve (../ui/support.mjs: this build's `sonde serve` on a free loopback port with a fresh data
// directory, stopped by its PID); what is added here is what span tests need on top of it:
//
//   const serve = await traceServe(t, { args: ['--trace-queue', '1'] }); // stopped by t.after
//   const r = await get(serve, '/api/v2/services');  // {status, headers, text, json}
//   const spans = await waitTrace(serve, traceId, 3); // polls /api/v2/trace/{id}, bounded
//
// and the arithmetic of times (hrTime [s, ns] to whole microseconds) and of OpenTelemetry
// exporters' results. Every wait is bounded in tries and in time; a route the server does not
// have makes a test fail with the status and body it answered, never skip.
import assert from 'node:assert/strict';
import path from 'node:path';
import { ExportResultCode } from '@opentelemetry/core';
import { Serve, outDir, saveText, sleep, withTimeout } from '../ui/support.mjs';

export { Serve, sleep, withTimeout };

export const HTTP_MS = 10_000;   // one request to the server, answered
export const POLL_TRIES = 50;    // reads of a trace until it is there (ingest is asynchronous)
export const POLL_EVERY_MS = 100;

// A `sonde serve --no-agent` (spans come only from ingest; no BPF) for test context t, stopped
// by t.after whatever happened; its log is left next to the data directories as
// <test name>.serve.log and it must have exited with code 0 after SIGTERM (no crash, no
// sanitizer report). opts: args (more arguments), dataDir (a directory of the caller's, kept).
export async function traceServe(t, { args = [], dataDir } = {}) {
  const serve = await Serve.start({ args: ['--no-agent', ...args], dataDir });
  t.after(async () => {
    try {
      await serve.close();
    } finally {
      const file = saveText(`${t.name.replace(/[^A-Za-z0-9._-]+/g, '_')}.serve.log`,
        serve.log({ full: true }));
      t.diagnostic?.(`server log: ${path.relative(process.cwd(), file)}`);
    }
    serve.assertCleanExits();
  });
  return serve;
}

export { outDir };

// One GET (or opts.method) to the server: {status, headers, text, json} (json undefined when
// the body is empty or not JSON). Bounded by HTTP_MS.
export async function request(serve, p, { method = 'GET', headers = {}, body } = {}) {
  const url = new URL(p.replace(/^\//, ''), serve.url);
  const ac = new AbortController();
  const res = await withTimeout(fetch(url, { method, headers, body, signal: ac.signal })
    .then(async (r) => ({ r, text: await r.text() })), HTTP_MS, `${method} ${p}`)
    .catch((e) => {
      ac.abort();
      throw e;
    });
  let json;
  try {
    json = res.text ? JSON.parse(res.text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.r.status, headers: res.r.headers, text: res.text, json };
}

export const get = (serve, p) => request(serve, p);

// What a failed request said, for an assertion's message (the body cut to 500 characters).
export function said(p, r) {
  const body = r.text.length > 500 ? `${r.text.slice(0, 500)}...` : r.text;
  return `GET ${p} answered ${r.status} ${JSON.stringify(body)}`;
}

// GET p, which must answer 200 with a JSON body; returns the JSON.
export async function getJson(serve, p) {
  const r = await get(serve, p);
  assert.equal(r.status, 200, said(p, r));
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/, `${p}: Content-Type`);
  assert.notEqual(r.json, undefined, `${said(p, r)}: not JSON`);
  return r.json;
}

// Polls GET /api/v2/trace/{traceId} until it answers 200 with at least nSpans spans (ingest is
// asynchronous: 202/200 means accepted, not yet queryable), at most POLL_TRIES times every
// POLL_EVERY_MS; returns the spans, sorted by id. Throws with the last answer otherwise.
export async function waitTrace(serve, traceId, nSpans, { tries = POLL_TRIES, every = POLL_EVERY_MS } = {}) {
  const p = `/api/v2/trace/${traceId}`;
  let last;
  for (let i = 0; i < tries; i++) {
    last = await get(serve, p);
    if (last.status === 200 && Array.isArray(last.json) && last.json.length >= nSpans)
      return sortSpans(last.json);
    if (last.status !== 200 && last.status !== 404)
      break; // an error other than "not there yet"
    await sleep(every);
  }
  throw new Error(`trace ${traceId} (${nSpans} spans) not there after ${tries} reads ` +
    `${every} ms apart: ${said(p, last)}`);
}

// Spans sorted by id then kind (a Zipkin client and a server sharing its id), for comparisons.
export function sortSpans(spans) {
  const key = (s) => `${s.id}/${s.kind ?? ''}`;
  return [...spans].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

// hrTime [seconds, nanoseconds] in nanoseconds (a BigInt), and in whole microseconds,
// truncated: what Sonde's Zipkin output says of an OTLP time (OTLP carries nanoseconds).
export const hrNs = (hr) => BigInt(hr[0]) * 1_000_000_000n + BigInt(hr[1]);
export const hrUs = (hr) => Number(hrNs(hr) / 1000n);

// An hrTime `ns` nanoseconds after second `sec` (ns may exceed a second).
export const hrAt = (sec, ns) => [sec + Math.floor(ns / 1e9), ns % 1e9];

// A SpanExporter that passes everything to inner and keeps the spans it was given and the
// results it got back ({code, error}); done() resolves once every export has its result.
export class RecordingExporter {
  constructor(inner) {
    this.inner = inner;
    this.spans = [];
    this.results = [];
    this.pending = 0;
  }

  export(spans, resultCallback) {
    this.spans.push(...spans);
    this.pending++;
    this.inner.export(spans, (result) => {
      this.pending--;
      this.results.push(result);
      resultCallback(result);
    });
  }

  forceFlush() {
    return this.inner.forceFlush ? this.inner.forceFlush() : Promise.resolve();
  }

  shutdown() {
    return this.inner.shutdown();
  }
}

// An ExportResult in words: "SUCCESS", or "FAILED: <error> (HTTP <code>: <body>)".
export function describeResult(r) {
  if (!r) return 'no result';
  if (r.code === ExportResultCode.SUCCESS) return 'SUCCESS';
  const e = r.error;
  const http = e && (e.code !== undefined || e.data !== undefined)
    ? ` (HTTP ${e.code}: ${JSON.stringify(String(e.data ?? '').slice(0, 500))})` : '';
  return `FAILED: ${e ? e.message || e : 'no error given'}${http}`;
}

// The exporter's results must all be SUCCESS, and there must be at least one.
export function assertExported(rec, what) {
  assert.ok(rec.results.length > 0, `${what}: nothing was exported`);
  assert.equal(rec.pending, 0, `${what}: an export has no result yet`);
  for (const r of rec.results)
    assert.equal(r.code, ExportResultCode.SUCCESS, `${what}: export ${describeResult(r)}`);
}

export { ExportResultCode };

// Drops the keys whose value is undefined (JSON has no undefined: the wire never carries them).
export function defined(obj) {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined));
}
