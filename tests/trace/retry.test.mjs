// End to end: the real OTLP/HTTP exporter (@opentelemetry/exporter-trace-otlp-http, its own
// retrying transport) meets `sonde serve --trace-queue 1` when the span writer cannot commit,
// and nothing is lost or stored twice.
//
// How the queue is filled for real: the server's data directory is on a tmpfs of 4 MiB (we run
// as root: mount, always unmounted by t.after), which a file then fills to ENOSPC. A first
// trace (W) is stored before that, so the span store exists. Then batches of one trace each are
// exported one after the other: the first are accepted (200) and held in memory, since the writer
// cannot commit them (with a queue of 1, one or two: one waiting, maybe one being written; a
// few more if the store still found free pages of its own for them); the next one (B) is
// answered 503 with Retry-After: 1, which the exporter honours (its diag log says "Scheduling
// export retry in 1000ms": without the header it would wait a jittered backoff).
// A request posted by hand at that moment gets 503 and Retry-After: 1 too, and is never stored.
// 1.5 s after B's first 503 the file is deleted: the writer commits, the queue drains, one of
// B's retries is taken and its export resolves SUCCESS. Then every trace (W, the accepted ones,
// B) holds its spans exactly once, and the refused request's trace is not there.
//
// Why: OTLP's retry contract (opentelemetry-proto docs/specification.md, "Failures": 503 is
// retryable, Retry-After SHOULD be honoured) only works if a refusal takes nothing and an
// acceptance is kept: a server that stored part of a refused request, or lost an accepted one
// when its disk was full, would duplicate or drop spans under load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmdirSync, unlinkSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DiagLogLevel, SpanKind, context, diag, trace } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import {
  ExportResultCode, Serve, describeResult, outDir, request, said, sleep, waitTrace, withTimeout,
} from './support.mjs';
import { saveText } from '../ui/support.mjs';

const SERVICE = 'sonde-retry';
const TMPFS_SIZE = '4m';
const MAX_BATCHES = 8;        // exported with the disk full before one must be refused
const REFUSAL_MS = 5_000;     // a batch answered (SUCCESS) or refused (a retry scheduled)
const RELEASE_AFTER_MS = 1_500; // after B's first 503, the filler is deleted
const EXPORT_MS = 30_000;     // the exporter's timeout, retries included (5 retries at 1 s)
const SETTLE_MS = 1_000;      // after all is there, a second look: nothing more comes

// Every message of the OpenTelemetry diag log, with the time it came.
const diagLog = [];
diag.setLogger({
  error: (...a) => diagLog.push({ at: Date.now(), level: 'error', msg: a.join(' ') }),
  warn: (...a) => diagLog.push({ at: Date.now(), level: 'warn', msg: a.join(' ') }),
  info: (...a) => diagLog.push({ at: Date.now(), level: 'info', msg: a.join(' ') }),
  debug: (...a) => diagLog.push({ at: Date.now(), level: 'debug', msg: a.join(' ') }),
  verbose: (...a) => diagLog.push({ at: Date.now(), level: 'verbose', msg: a.join(' ') }),
}, DiagLogLevel.VERBOSE);
const retriesScheduled = () => diagLog.filter((d) => /Scheduling export retry in/.test(d.msg));

// Writes into file until the filesystem is full (ENOSPC); bounded (64 MiB at most, far beyond
// the tmpfs). Returns the bytes written.
function fillUp(file) {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  let total = 0;
  try {
    for (let i = 0; i < 1024; i++) {
      try {
        total += writeSync(fd, chunk);
      } catch (e) {
        if (e.code === 'ENOSPC') return total;
        throw e;
      }
    }
  } finally {
    closeSync(fd);
  }
  throw new Error(`${file}: no ENOSPC after ${total} bytes: is it on the ${TMPFS_SIZE} tmpfs?`);
}

function umount(dir) {
  for (let i = 0; i < 20; i++) { // EBUSY for a moment after the server's exit
    try {
      execFileSync('umount', [dir], { stdio: 'pipe' });
      return;
    } catch (e) {
      if (i === 19) {
        execFileSync('umount', ['-l', dir], { stdio: 'pipe' }); // detached at least
        return;
      }
      execFileSync('sleep', ['0.1']);
    }
  }
}

// A trace of two spans (a SERVER root and an INTERNAL child, named after the batch's place in
// the sequence: a batch refused keeps its name "Batch 2" though the test calls it B), ended;
// returns its ReadableSpans and trace id.
let sequence = 0;
function makeTrace(tracer, memory, label) {
  memory.reset();
  const n = sequence++;
  const root = tracer.startSpan(`Batch ${n}`, { kind: SpanKind.SERVER,
    attributes: { 'sonde.batch': n } });
  const child = tracer.startSpan(`Write ${n}`, { kind: SpanKind.INTERNAL },
    trace.setSpan(context.active(), root));
  child.end();
  root.end();
  const spans = memory.getFinishedSpans();
  assert.equal(spans.length, 2);
  return { label, spans, traceId: root.spanContext().traceId };
}

// Starts exporting batch; resolves {result} when the export has its result, or {refused} when
// the exporter scheduled a retry first (the server answered it 503 or the like), or throws
// after REFUSAL_MS. batch.done is the export's result, whenever it comes.
async function exportBatch(exporter, batch) {
  const before = retriesScheduled().length;
  batch.started = Date.now();
  batch.done = new Promise((resolve) => exporter.export(batch.spans, resolve));
  const deadline = Date.now() + REFUSAL_MS;
  let result;
  batch.done.then((r) => (result = r));
  while (Date.now() < deadline) {
    if (result) return { result };
    const r = retriesScheduled();
    if (r.length > before) return { refused: r[before] };
    await sleep(10);
  }
  throw new Error(`batch ${batch.label}: neither a result nor a retry after ${REFUSAL_MS} ms; ` +
    `diag: ${JSON.stringify(diagLog.slice(-5))}`);
}

// A minimal OTLP/JSON request of one span, posted by hand (fetch: no retry).
function handRequest(traceId) {
  const ns = BigInt(Date.now()) * 1_000_000n;
  return JSON.stringify({
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: SERVICE } }] },
      scopeSpans: [{
        scope: { name: 'by-hand' },
        spans: [{
          traceId, spanId: '00000000000000aa', name: 'Refused', kind: 2,
          startTimeUnixNano: String(ns), endTimeUnixNano: String(ns + 1_000_000n),
        }],
      }],
    }],
  });
}

test('the OTLP exporter retries a 503 of a full trace queue per Retry-After; nothing is stored ' +
  'twice', { timeout: 180_000 }, async (t) => {
  const mnt = mkdtempSync(path.join(os.tmpdir(), 'sonde-trace-tmpfs-'));
  const filler = path.join(mnt, 'filler');
  let mounted = false;
  let serve = null;
  t.after(async () => {
    const problems = [];
    try {
      await serve?.close();
    } catch (e) {
      problems.push(e);
    }
    if (serve) {
      saveText(`${t.name.replace(/[^A-Za-z0-9._-]+/g, '_')}.serve.log`, serve.log({ full: true }));
      try {
        serve.assertCleanExits();
      } catch (e) {
        problems.push(e);
      }
    }
    try {
      if (mounted) umount(mnt);
      rmdirSync(mnt);
    } catch (e) {
      problems.push(e);
    }
    if (problems.length) throw problems[0];
  });

  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_SIZE},mode=0700`, 'tmpfs', mnt],
      { stdio: 'pipe' });
  } catch (e) {
    throw new Error(`cannot mount a tmpfs on ${mnt} (this test needs root, as CI runs it): ` +
      `${String(e.stderr || e.message).trim()}`);
  }
  mounted = true;
  serve = await Serve.start({ args: ['--no-agent', '--trace-queue', '1'],
    dataDir: path.join(mnt, 'data') });
  t.diagnostic(`data on a ${TMPFS_SIZE} tmpfs at ${mnt}; server log into ${outDir()}`);

  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': SERVICE }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  const tracer = provider.getTracer('sonde-retry-test', '1.0.0');
  const exporter = new OTLPTraceExporter({ url: `${serve.url}v1/traces`, timeoutMillis: EXPORT_MS });
  t.after(() => exporter.shutdown().catch(() => {}));

  // W, before the disk is full: stored, so the span store exists and the route works
  const w = makeTrace(tracer, memory, 'W');
  const wr = await exportBatch(exporter, w);
  assert.ok(wr.result, `W, with room on the disk, was refused: ${JSON.stringify(wr.refused)}`);
  assert.equal(wr.result.code, ExportResultCode.SUCCESS, `W: export ${describeResult(wr.result)}`);
  await waitTrace(serve, w.traceId, 2);

  const filled = fillUp(filler);
  t.diagnostic(`filler: ${filled} bytes, then ENOSPC`);

  // A..: accepted and held; B: refused with 503 + Retry-After, retried by the exporter
  const accepted = [];
  let b = null;
  for (let i = 0; i < MAX_BATCHES && !b; i++) {
    const batch = makeTrace(tracer, memory, `A${i + 1}`);
    const r = await exportBatch(exporter, batch);
    if (r.refused) {
      batch.label = 'B';
      batch.refused = r.refused;
      b = batch;
    } else {
      assert.equal(r.result.code, ExportResultCode.SUCCESS,
        `batch ${batch.label} (the disk full, the queue not yet): export ${describeResult(r.result)}`);
      accepted.push(batch);
    }
  }
  assert.ok(b, `${MAX_BATCHES} batches accepted with the disk full and --trace-queue 1: none ` +
    'was refused (503); the span writer commits without room, or the queue is not bounded');
  assert.ok(accepted.length >= 1, 'the first batch after the disk filled was accepted (200): ' +
    'the queue had room');
  t.diagnostic(`${accepted.length} batches accepted with the disk full, then B refused`);
  assert.match(b.refused.msg, /Scheduling export retry in 1000ms/,
    'the exporter waits what Retry-After: 1 says (without it: a jittered backoff)');

  // the same refusal, seen by hand: 503, Retry-After: 1, and nothing of it taken
  const refusedTrace = 'feedfacefeedfacefeedfacefeedface';
  const p = '/v1/traces';
  const hand = await request(serve, p, { method: 'POST',
    headers: { 'Content-Type': 'application/json' }, body: handRequest(refusedTrace) });
  assert.equal(hand.status, 503, `${said(p, hand).replace(/^GET/, 'POST')}: the queue is full`);
  assert.equal(hand.headers.get('retry-after'), '1', 'Retry-After: 1');

  // room again: the writer commits, the queue drains, B's retry is taken
  const wait = b.refused.at + RELEASE_AFTER_MS - Date.now();
  if (wait > 0) await sleep(wait);
  unlinkSync(filler);
  const bResult = await withTimeout(b.done, EXPORT_MS + 5_000, 'export of B');
  assert.equal(bResult.code, ExportResultCode.SUCCESS, `B, retried: export ${describeResult(bResult)}`);
  const bRetries = retriesScheduled().filter((d) => d.at >= b.refused.at);
  t.diagnostic(`B: ${bRetries.length} retries, SUCCESS after ${Date.now() - b.started} ms`);
  assert.ok(bRetries.length >= 2, 'B was refused again while the disk was still full (its first ' +
    'retry, 1 s after the first refusal, is half a second before the filler goes)');

  // every trace exactly once: its two spans, no more, no duplicate
  const all = [w, ...accepted, b];
  const counts = async () => {
    const out = {};
    for (const x of all) {
      const spans = await waitTrace(serve, x.traceId, 2);
      out[x.label] = spans;
    }
    return out;
  };
  const first = await counts();
  await sleep(SETTLE_MS);
  const second = await counts();
  for (const x of all) {
    for (const [when, got] of [['first', first], ['a second later', second]]) {
      const spans = got[x.label];
      assert.equal(spans.length, 2, `trace ${x.label} (${x.traceId}), ${when}: ` +
        `${spans.length} spans, not 2: ${JSON.stringify(spans)}`);
      assert.deepEqual(spans.map((s) => s.id).sort(),
        x.spans.map((s) => s.spanContext().spanId).sort(), `trace ${x.label}: its own spans`);
    }
  }
  const q = `/api/v2/trace/${refusedTrace}`;
  const r = await request(serve, q);
  assert.equal(r.status, 404, `${said(q, r)}: the request refused with 503 must not be stored`);

  // and nothing in the diag log but retries and their outcome
  const bad = diagLog.filter((d) => d.level === 'error' || d.level === 'warn');
  assert.deepEqual(bad, [], 'no error or warning from the exporter');
  await provider.shutdown();
});
