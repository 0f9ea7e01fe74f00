// End to end: the real OpenTelemetry JS SDK (BasicTracerProvider, BatchSpanProcessor and
// forceFlush) sends one known trace through each of its three exporters into `sonde serve`:
// OTLP/HTTP JSON (@opentelemetry/exporter-trace-otlp-http), OTLP/HTTP protobuf gzipped
// (@opentelemetry/exporter-trace-otlp-proto) and Zipkin v2 JSON (@opentelemetry/exporter-zipkin);
// each with its own resource service.name. All three send chunked bodies with no
// Content-Length. The trace: a SERVER root with attributes of every type (string, int, double,
// bool, string array), an event and status OK; a CLIENT child with peer.service and
// server.address; an INTERNAL grandchild with status ERROR and a message. Span times are given
// explicitly, with sub-microsecond parts chosen so that truncating and rounding differ.
//
// Why: the ingest must take what real clients send, not what we think they send, and the
// Zipkin v2 query API must give it back as Zipkin (openzipkin/zipkin-api zipkin2-api.yaml, the
// reference server's normalisation) and OpenTelemetry (opentelemetry-specification
// trace/sdk_exporters/zipkin.md, common/mapping-to-non-otlp.md) define it:
//   - OTLP: ids lower-case hex, parentId links, name and serviceName lower-cased, kind (INTERNAL
//     = absent), timestamp and duration in whole µs truncated from the SDK's nanoseconds,
//     remoteEndpoint.serviceName of a CLIENT from peer.service (before server.address),
//     attributes as string tags (arrays as a JSON list), status as otel.status_code and error,
//     events as annotations, the scope as otel.scope.name and otel.scope.version; nothing else.
//   - Zipkin exporter: the spans come back as the exporter sent them (its own arithmetic: a
//     fractional timestamp, which Sonde truncates; rounded duration and annotation times; its
//     tags include the resource's attributes), with name and serviceName lower-cased.
//   - /api/v2/trace/{id}, /api/v2/traces (serviceName, spanName, annotationQuery, minDuration,
//     endTs, lookback, limit; matching and not), /api/v2/traceMany, /api/v2/services and
//     /api/v2/spans agree with each other.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiagLogLevel, SpanKind, SpanStatusCode, context, diag, trace } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter as OTLPJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OTLPProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { ZipkinExporter } from '@opentelemetry/exporter-zipkin';
import {
  RecordingExporter, assertExported, defined, get, getJson, hrAt, hrUs, said, sortSpans,
  traceServe, waitTrace, withTimeout,
} from './support.mjs';

const SCOPE = { name: 'sonde-e2e', version: '1.2.3' };
const FLUSH_MS = 30_000; // forceFlush, retries included (none expected)

// The names as the SDK is given them (mixed case: Zipkin output lower-cases them).
const ROOT = 'GET /Orders/{id}';
const CLIENT = 'Inventory.Reserve';
const INNER = 'Compute-Price';
const ROOT_ATTRS = {
  'http.request.method': 'GET',                  // string
  'http.response.status_code': 200,              // int
  'sonde.order.total_cents': -9007199254740991,  // int, negative, 53 bits
  'sonde.order.ratio': 12.5,                     // double (one decimal form in C and JS alike)
  'sonde.cache.hit': true,                       // bool
  'sonde.cache.stale': false,                    // bool
  'sonde.order.skus': ['sku-1', 'sku-2'],        // string array
};
const CLIENT_ATTRS = { 'peer.service': 'inventory', 'server.address': 'inventory.internal' };
const EVENT = 'Cache-Miss';
const ERROR_MESSAGE = 'Price Table Missing';

// The OpenTelemetry diag log's warnings and errors: an exporter warns when a 200's body is not
// an ExportTraceServiceResponse it can decode (say, text in answer to a JSON request) and when
// the response is a partial success (rejected spans); neither may happen here.
const complaints = [];
const keep = (level) => (...a) => complaints.push(`${level}: ${a.map((x) =>
  (x instanceof Error ? x.message : typeof x === 'string' ? x : JSON.stringify(x))).join(' ')}`);
diag.setLogger({ error: keep('error'), warn: keep('warn'), info: () => {}, debug: () => {},
  verbose: () => {} }, DiagLogLevel.WARN);

const EXPORTERS = [
  {
    label: 'OTLP/HTTP JSON', service: 'Sonde-E2E-OTLP-JSON', otlp: true,
    make: (url) => new OTLPJsonExporter({ url: `${url}v1/traces`, timeoutMillis: 10_000 }),
  },
  {
    label: 'OTLP/HTTP protobuf gzip', service: 'Sonde-E2E-OTLP-Proto', otlp: true,
    make: (url) => new OTLPProtoExporter({ url: `${url}v1/traces`, compression: 'gzip',
      timeoutMillis: 10_000 }),
  },
  {
    label: 'Zipkin exporter', service: 'Sonde-E2E-Zipkin', otlp: false,
    make: (url) => new ZipkinExporter({ url: `${url}api/v2/spans` }),
  },
];

// Makes the trace with a provider of its own whose only processor batches into rec, flushes
// it, and returns the three ReadableSpans as the exporter got them: {root, client, inner}.
async function emit(service, rec) {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': service }),
    // only forceFlush sends: the three spans go in one request
    spanProcessors: [new BatchSpanProcessor(rec, { scheduledDelayMillis: 600_000,
      exportTimeoutMillis: FLUSH_MS })],
  });
  const tracer = provider.getTracer(SCOPE.name, SCOPE.version);
  const sec = Math.floor(Date.now() / 1000) - 30; // well inside the default lookback
  const at = (ns) => hrAt(sec, ns);

  const root = tracer.startSpan(ROOT, { kind: SpanKind.SERVER, attributes: ROOT_ATTRS,
    startTime: at(100_000_999) });
  root.addEvent(EVENT, at(150_000_777));
  root.setStatus({ code: SpanStatusCode.OK });
  const rootCtx = trace.setSpan(context.active(), root);
  const client = tracer.startSpan(CLIENT, { kind: SpanKind.CLIENT, attributes: CLIENT_ATTRS,
    startTime: at(200_000_100) }, rootCtx);
  const inner = tracer.startSpan(INNER, { kind: SpanKind.INTERNAL, startTime: at(300_123_999) },
    trace.setSpan(rootCtx, client));
  inner.setStatus({ code: SpanStatusCode.ERROR, message: ERROR_MESSAGE });
  inner.end(at(400_000_500));
  client.end(at(700_000_900));
  root.end(at(1_000_002_800)); // 900001.801 µs: truncated 900001, rounded 900002

  try {
    await withTimeout(provider.forceFlush(), FLUSH_MS + 5_000, `${service}: forceFlush`);
  } catch (e) {
    // the exporter's result says more than the processor's rejection
    assertExported(rec, service);
    throw e;
  } finally {
    await provider.shutdown().catch(() => {});
  }
  assertExported(rec, service);
  const byName = Object.fromEntries(rec.spans.map((s) => [s.name, s]));
  assert.equal(rec.spans.length, 3, 'three spans exported');
  return { root: byName[ROOT], client: byName[CLIENT], inner: byName[INNER] };
}

const ZIPKIN_KIND = { [SpanKind.SERVER]: 'SERVER', [SpanKind.CLIENT]: 'CLIENT',
  [SpanKind.PRODUCER]: 'PRODUCER', [SpanKind.CONSUMER]: 'CONSUMER' }; // INTERNAL: absent

function statusTags(s) {
  if (s.status.code === SpanStatusCode.OK) return { 'otel.status_code': 'OK' };
  if (s.status.code === SpanStatusCode.ERROR)
    return { 'otel.status_code': 'ERROR', error: s.status.message ?? '' };
  return {};
}

// An array attribute's tag: a JSON list (opentelemetry-specification, zipkin.md "Attribute"),
// compared as JSON (its spacing is no part of the contract) and replaced by a marker in both.
const LIST = Symbol('json list');
function otlpTagValue(v) {
  if (Array.isArray(v)) return { [LIST]: v };
  return String(v); // "42", "12.5", "true", "false", the string itself
}

// What Sonde must give back for ReadableSpan s of an OTLP exporter (§2.5).
function expectOtlp(s, service) {
  const tags = {};
  for (const [k, v] of Object.entries(s.attributes)) tags[k] = otlpTagValue(v);
  Object.assign(tags, statusTags(s), { 'otel.scope.name': SCOPE.name,
    'otel.scope.version': SCOPE.version });
  return defined({
    traceId: s.spanContext().traceId,
    parentId: s.parentSpanContext?.spanId,
    id: s.spanContext().spanId,
    kind: ZIPKIN_KIND[s.kind],
    name: s.name.toLowerCase(),
    timestamp: hrUs(s.startTime),
    duration: Math.max(1, hrUs(s.duration)),
    localEndpoint: { serviceName: service.toLowerCase() },
    // peer.service ranks before server.address; only CLIENT and PRODUCER have one
    remoteEndpoint: s.kind === SpanKind.CLIENT ? { serviceName: CLIENT_ATTRS['peer.service'] }
      : undefined,
    annotations: s.events.length
      ? s.events.map((e) => ({ timestamp: hrUs(e.time), value: e.name })) : undefined,
    tags,
  });
}

// What the OpenTelemetry Zipkin exporter sends for s (its transform.js, 2.12.1), as Sonde must
// give it back: hrTimeToMicroseconds is seconds * 1e6 + ns / 1e3, a float (Sonde truncates the
// fraction of the timestamp); duration and annotation times are Math.round-ed by the exporter;
// tags are String(value) of the attributes, then the status, then the resource's attributes;
// no remoteEndpoint, no scope. Name and serviceName lower-cased by Sonde as by Zipkin.
const floatUs = (hr) => hr[0] * 1e6 + hr[1] / 1e3;
function expectZipkinExporter(s, service) {
  const tags = {};
  for (const [k, v] of Object.entries(s.attributes)) tags[k] = String(v);
  Object.assign(tags, statusTags(s));
  if (tags.error === '') delete tags.error; // the exporter writes error only when non-empty
  for (const [k, v] of Object.entries(s.resource.attributes)) tags[k] = String(v);
  return defined({
    traceId: s.spanContext().traceId,
    parentId: s.parentSpanContext?.spanId,
    id: s.spanContext().spanId,
    kind: ZIPKIN_KIND[s.kind],
    name: s.name.toLowerCase(),
    timestamp: Math.trunc(floatUs(s.startTime)),
    duration: Math.round(floatUs(s.duration)),
    localEndpoint: { serviceName: service.toLowerCase() },
    annotations: s.events.length
      ? s.events.map((e) => ({ timestamp: Math.round(floatUs(e.time)), value: e.name }))
      : undefined,
    tags,
  });
}

// Compares one span field by field (so that a failure names the field), then as a whole.
function assertSpan(actual, expected, what) {
  assert.equal(typeof actual, 'object', `${what}: a span object`);
  const a = structuredClone(actual);
  const e = structuredClone(expected);
  if (expected.tags) {
    for (const [k, v] of Object.entries(expected.tags)) {
      if (v && typeof v === 'object' && LIST in v) {
        const got = a.tags?.[k];
        assert.equal(typeof got, 'string', `${what}: tag ${k} is a string`);
        let parsed;
        try {
          parsed = JSON.parse(got);
        } catch {
          assert.fail(`${what}: tag ${k} = ${JSON.stringify(got)} is not a JSON list`);
        }
        assert.deepEqual(parsed, v[LIST], `${what}: tag ${k} = ${JSON.stringify(got)}`);
        a.tags[k] = e.tags[k] = '<json list>';
      }
    }
  }
  for (const f of new Set([...Object.keys(e), ...Object.keys(a)]))
    assert.deepEqual(a[f], e[f], `${what}: field ${f} (got ${JSON.stringify(actual)})`);
  assert.deepEqual(a, e, `${what}: the whole span`);
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;

test('OpenTelemetry SDK traces through OTLP JSON, OTLP protobuf and the Zipkin exporter',
  { timeout: 240_000 }, async (t) => {
    const serve = await traceServe(t);
    const sent = []; // {label, service, spans: {root, client, inner}, traceId}

    for (const ex of EXPORTERS) {
      await t.test(`${ex.label}: export, then GET /api/v2/trace/{id}`, async () => {
        const rec = new RecordingExporter(ex.make(serve.url));
        const before = complaints.length;
        const spans = await emit(ex.service, rec);
        assert.deepEqual(complaints.slice(before), [],
          `${ex.label}: the exporter's diag log has no warning or error about the response`);
        const traceId = spans.root.spanContext().traceId;
        assert.match(traceId, HEX32, 'the SDK makes 128-bit trace ids, lower-case hex');
        sent.push({ ...ex, spans, traceId });

        const got = await waitTrace(serve, traceId, 3);
        assert.equal(got.length, 3, `three spans in trace ${traceId}: ${JSON.stringify(got)}`);
        const expectOne = ex.otlp ? expectOtlp : expectZipkinExporter;
        const want = sortSpans(Object.values(spans).map((s) => expectOne(s, ex.service)));
        for (const s of got) {
          assert.match(s.traceId, HEX32, 'traceId: 32 lower-case hex');
          assert.match(s.id, HEX16, 'id: 16 lower-case hex');
          if (s.parentId !== undefined) assert.match(s.parentId, HEX16, 'parentId: 16 lower-case hex');
        }
        const byId = Object.fromEntries(got.map((s) => [s.id, s]));
        for (const w of want) assertSpan(byId[w.id], w, `${ex.label} span "${w.name}"`);

        // the tree: inner -> client -> root (no parent)
        const { root, client, inner } = spans;
        assert.equal(byId[root.spanContext().spanId].parentId, undefined, 'the root has no parentId');
        assert.equal(byId[client.spanContext().spanId].parentId, root.spanContext().spanId);
        assert.equal(byId[inner.spanContext().spanId].parentId, client.spanContext().spanId);
      });
    }

    for (const s of sent) {
      await t.test(`GET /api/v2/traces finds the ${s.label} trace by service, span name, tag, ` +
        'annotation, duration and time; and not by a tag it lacks or outside the time', async () => {
        const svc = s.service.toLowerCase();
        const whole = await waitTrace(serve, s.traceId, 3);
        const rootUs = hrUs(s.spans.root.startTime);
        const q = (params) => `/api/v2/traces?${new URLSearchParams(params)}`;

        let p = q({ serviceName: svc });
        let r = await getJson(serve, p);
        assert.ok(Array.isArray(r) && r.length === 1, `${p}: one trace, got ${JSON.stringify(r)}`);
        assert.deepEqual(sortSpans(r[0]), whole, `${p}: the trace as /api/v2/trace/{id} gives it`);

        p = q({
          serviceName: svc, spanName: ROOT.toLowerCase(),
          annotationQuery: `http.request.method=GET and ${EVENT}`,
          minDuration: '900000', endTs: String(Date.now()), lookback: String(3_600_000), limit: '10',
        });
        r = await getJson(serve, p);
        assert.deepEqual(r.map((tr) => tr.map((x) => x.traceId)[0]), [s.traceId], `${p}: found`);

        for (const params of [
          { serviceName: svc, annotationQuery: 'http.request.method=POST' },
          { serviceName: svc, spanName: 'no-such-span' },
          { serviceName: svc, minDuration: '900003' },
          // a window of a second that ends a minute before the trace
          { serviceName: svc, endTs: String(Math.floor(rootUs / 1000) - 60_000), lookback: '1000' },
        ]) {
          p = q(params);
          r = await getJson(serve, p);
          assert.deepEqual(r, [], `${p}: no trace`);
        }
      });
    }

    await t.test('GET /api/v2/traceMany gives the three traces', async () => {
      const ids = sent.map((s) => s.traceId);
      const p = `/api/v2/traceMany?traceIds=${ids.join(',')}`;
      const r = await getJson(serve, p);
      assert.ok(Array.isArray(r), `${p}: a list`);
      const byTrace = Object.fromEntries(r.map((tr) => [tr[0]?.traceId, sortSpans(tr)]));
      assert.deepEqual(Object.keys(byTrace).sort(), [...ids].sort(), `${p}: the traces asked for`);
      for (const id of ids)
        assert.deepEqual(byTrace[id], await waitTrace(serve, id, 3), `${p}: trace ${id}`);
    });

    await t.test('GET /api/v2/services and /api/v2/spans list them, lower-cased', async () => {
      const services = await getJson(serve, '/api/v2/services');
      assert.deepEqual(services, EXPORTERS.map((s) => s.service.toLowerCase()).sort(),
        '/api/v2/services: the three services, sorted (and no remote one)');
      for (const s of sent) {
        const p = `/api/v2/spans?serviceName=${encodeURIComponent(s.service.toLowerCase())}`;
        assert.deepEqual(await getJson(serve, p), [CLIENT, INNER, ROOT].map((n) => n.toLowerCase()).sort(),
          `${p}: its span names, sorted`);
      }
      const r = await get(serve, '/api/v2/spans');
      assert.equal(r.status, 400, `${said('/api/v2/spans', r)}: serviceName is required`);
    });

    assert.equal(sent.length, EXPORTERS.length, 'every exporter delivered its trace');
  });
