// End to end: openzipkin's own JavaScript tracer (zipkin 0.22: Tracer, BatchRecorder) and its
// HTTP transport (zipkin-transport-http: HttpLogger, jsonEncoder JSON_V2) post a client/server
// pair of spans to `sonde serve`'s POST /api/v2/spans, twice:
//   - B3 join: a 64-bit trace id, and a server that shares the client's span id (shared: true),
//     the classic Zipkin RPC model (two spans with one id, told apart by kind);
//   - a 128-bit trace id, and a server span that is the client's child (its own id, parentId).
// Each span has tags, a timed annotation and both endpoints (service name, IPv4, port); zipkin-js
// lower-cases names itself. Times are given explicitly (whole microseconds, as Zipkin has them).
// HttpLogger posts with a Content-Length (not chunked), one request for the four spans.
//
// Why: Zipkin v2 (openzipkin/zipkin-api zipkin2-api.yaml and the reference server) stores a
// span as it was sent, normalising only the name and service names to lower case; so what the
// query API gives back must equal, field by field, what HttpLogger really posted (captured here
// by handing it a fetch that keeps each body before sending it): ids, parentId, name, kind,
// timestamp, duration, shared, localEndpoint, remoteEndpoint, annotations, tags. The transport
// counts 200 and 202 as success; anything else it reports as an error, which fails the test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import zipkin from 'zipkin';
import { HttpLogger } from 'zipkin-transport-http';
import {
  defined, get, getJson, said, sortSpans, traceServe, waitTrace, withTimeout,
} from './support.mjs';

const { Annotation, BatchRecorder, ExplicitContext, InetAddress, Tracer, TraceId, jsonEncoder,
  option } = zipkin;
const { JSON_V2 } = jsonEncoder;

const FRONTEND = 'Sonde-Zipkin-Frontend';
const BACKEND = 'sonde-zipkin-backend';
const POST_MS = 10_000;

// An HttpLogger that posts only when told (post()), with the real fetch; every body it sent and
// the answer's status are kept in posts.
function makeLogger(url) {
  const posts = [];
  const logger = new HttpLogger({
    endpoint: `${url}api/v2/spans`,
    jsonEncoder: JSON_V2,
    httpInterval: 3_600_000, // never by itself: post() sends
    timeout: POST_MS,
    fetchImplementation: async (endpoint, opts) => {
      const entry = { body: opts.body, headers: opts.headers, status: 0 };
      posts.push(entry);
      const res = await fetch(endpoint, { method: opts.method, headers: opts.headers, body: opts.body });
      entry.status = res.status;
      entry.text = await res.clone().text();
      return res;
    },
  });
  const errors = [];
  logger.on('error', (e) => errors.push(e.message));
  // sends what is queued; resolves once the server answered (HttpLogger emits success or error)
  logger.post = () => withTimeout(new Promise((resolve) => {
    const done = () => {
      logger.off('success', done);
      logger.off('error', done);
      resolve();
    };
    logger.once('success', done);
    logger.once('error', done);
    logger.processQueue(logger.fetchImplementation);
  }), POST_MS + 1_000, 'POST /api/v2/spans');
  logger.posts = posts;
  logger.errors = errors;
  return logger;
}

// A tracer of service name, recording into its own BatchRecorder that reports to logger.
function makeTracer(logger, serviceName, { traceId128Bit = false, supportsJoin = true } = {}) {
  return new Tracer({
    ctxImpl: new ExplicitContext(),
    recorder: new BatchRecorder({ logger }),
    localServiceName: serviceName,
    traceId128Bit,
    supportsJoin,
  });
}

// The client/server pair. t0: the client's start (epoch µs). The server's tracer gets the
// client's ids as a server reads them from B3 headers, and joins (shares the span id) or makes
// a child, as its supportsJoin says. Spans are reported on finish (ClientRecv, ServerSend).
function recordPair({ client, server, t0, path }) {
  const cid = client.createRootId(new option.Some(true));
  client.setId(cid);
  client.recordServiceName(FRONTEND);
  client.recordRpc(`GET ${path}`);
  client.recordAnnotation(new Annotation.LocalAddr({ host: new InetAddress('10.0.0.1'), port: 41234 }));
  client.recordBinary('http.path', path);
  client.recordBinary('http.method', 'GET');
  client.recordAnnotation(new Annotation.ServerAddr({ serviceName: BACKEND,
    host: new InetAddress('10.0.0.2'), port: 8080 }));
  client.recordAnnotation(new Annotation.ClientSend(), t0);
  client.recordAnnotation(new Annotation.Message('Wire Send'), t0 + 7);

  // "from the headers" (X-B3-TraceId, -SpanId, -ParentSpanId, -Sampled)
  const headers = new TraceId({ traceId: cid.traceId, parentId: cid.parentSpanId, spanId: cid.spanId,
    sampled: new option.Some(true) });
  const sid = server.join(headers);
  server.setId(sid);
  server.recordServiceName(BACKEND);
  server.recordRpc(`Handle ${path}`);
  server.recordAnnotation(new Annotation.LocalAddr({ host: new InetAddress('10.0.0.2'), port: 8080 }));
  server.recordAnnotation(new Annotation.ClientAddr({ host: new InetAddress('10.0.0.1'), port: 41234 }));
  server.recordAnnotation(new Annotation.ServerRecv(), t0 + 120);
  server.recordBinary('http.status_code', '200');
  server.recordBinary('sonde.rows', 42);
  server.recordAnnotation(new Annotation.Message('DB Query'), t0 + 300);
  server.recordAnnotation(new Annotation.ServerSend(), t0 + 1_650);

  client.setId(cid);
  client.recordAnnotation(new Annotation.ClientRecv(), t0 + 2_001);
  return { cid, sid };
}

// What Sonde must give back for a span HttpLogger posted: the same, with name and service names
// lower-cased (as Zipkin's Span and Endpoint builders do).
function normalised(sent) {
  const lower = (e) => (e && e.serviceName !== undefined ? { ...e, serviceName: e.serviceName.toLowerCase() } : e);
  return defined({ ...sent, name: sent.name?.toLowerCase(), localEndpoint: lower(sent.localEndpoint),
    remoteEndpoint: lower(sent.remoteEndpoint) });
}

function assertSpan(actual, expected, what) {
  assert.ok(actual, `${what}: there (expected ${JSON.stringify(expected)})`);
  for (const f of new Set([...Object.keys(expected), ...Object.keys(actual)]))
    assert.deepEqual(actual[f], expected[f], `${what}: field ${f} (got ${JSON.stringify(actual)})`);
  assert.deepEqual(actual, expected, `${what}: the whole span`);
}

test('openzipkin zipkin-js client/server pairs come back as HttpLogger sent them',
  { timeout: 120_000 }, async (t) => {
    const serve = await traceServe(t);
    const logger = makeLogger(serve.url);
    const t0 = (Date.now() - 20_000) * 1000; // µs, 20 s ago
    const cases = [
      { label: '64-bit trace id, server joins the client span (shared)',
        client: makeTracer(logger, FRONTEND), server: makeTracer(logger, BACKEND),
        t0, path: '/Orders/1', traceIdLen: 16, shared: true },
      { label: '128-bit trace id, server span is the client span\'s child',
        client: makeTracer(logger, FRONTEND, { traceId128Bit: true }),
        server: makeTracer(logger, BACKEND, { supportsJoin: false }),
        t0: t0 + 5_000_000, path: '/Orders/2', traceIdLen: 32, shared: false },
    ];
    for (const c of cases) c.ids = recordPair(c);

    await logger.post();
    assert.equal(logger.posts.length, 1, 'HttpLogger posted once');
    const post = logger.posts[0];
    assert.ok(post.status === 202 || post.status === 200,
      `POST /api/v2/spans answered ${post.status} ${JSON.stringify(post.text)} (Zipkin: 202)`);
    assert.deepEqual(logger.errors, [], 'HttpLogger reported no error');
    const sentSpans = JSON.parse(post.body);
    assert.equal(sentSpans.length, 4, `four spans posted: ${post.body}`);

    for (const c of cases) {
      await t.test(c.label, async () => {
        const { cid, sid } = c.ids;
        const traceId = cid.traceId;
        assert.equal(traceId.length, c.traceIdLen, `zipkin-js made a ${c.traceIdLen}-hex trace id`);
        const mine = sentSpans.filter((s) => s.traceId === traceId);
        assert.equal(mine.length, 2, `two spans of ${traceId} posted`);
        const sentClient = mine.find((s) => s.kind === 'CLIENT');
        const sentServer = mine.find((s) => s.kind === 'SERVER');

        // what zipkin-js sent is what this test meant to send (so that the comparison below
        // compares something): the times given, the ids, the join or not
        assert.equal(sentClient.timestamp, c.t0);
        assert.equal(sentClient.duration, 2_001);
        assert.equal(sentServer.timestamp, c.t0 + 120);
        assert.equal(sentServer.duration, 1_530);
        assert.equal(sentClient.id, cid.spanId);
        assert.equal(sentServer.id, sid.spanId);
        assert.equal(sentServer.id === sentClient.id, c.shared, 'the server shares the span id');
        assert.equal(sentServer.shared, c.shared ? true : undefined);
        assert.equal(sentServer.parentId, c.shared ? undefined : sentClient.id);
        assert.deepEqual(sentClient.annotations, [{ timestamp: c.t0 + 7, value: 'Wire Send' }]);
        assert.deepEqual(sentServer.tags, { 'http.status_code': '200', 'sonde.rows': '42' });
        // zipkin-js lower-cases service names itself
        assert.deepEqual(sentClient.localEndpoint,
          { serviceName: FRONTEND.toLowerCase(), ipv4: '10.0.0.1', port: 41234 });
        assert.deepEqual(sentClient.remoteEndpoint, { serviceName: BACKEND, ipv4: '10.0.0.2', port: 8080 });
        assert.deepEqual(sentServer.localEndpoint, { serviceName: BACKEND, ipv4: '10.0.0.2', port: 8080 });
        assert.deepEqual(sentServer.remoteEndpoint, { ipv4: '10.0.0.1', port: 41234 });

        const got = await waitTrace(serve, traceId, 2);
        assert.equal(got.length, 2, `two spans in trace ${traceId}: ${JSON.stringify(got)}`);
        const gotClient = got.find((s) => s.kind === 'CLIENT');
        const gotServer = got.find((s) => s.kind === 'SERVER');
        assertSpan(gotClient, normalised(sentClient), 'the CLIENT span');
        assertSpan(gotServer, normalised(sentServer), 'the SERVER span');
        assert.equal(gotClient.localEndpoint.serviceName, FRONTEND.toLowerCase());
        assert.equal(gotClient.name, `get ${c.path.toLowerCase()}`);

        // the search finds it by either side's service, and gives the same spans
        for (const svc of [FRONTEND.toLowerCase(), BACKEND]) {
          const p = `/api/v2/traces?serviceName=${encodeURIComponent(svc)}&` +
            `annotationQuery=${encodeURIComponent('http.method=GET')}&limit=10`;
          const r = await getJson(serve, p);
          const found = r.find((tr) => tr[0]?.traceId === traceId);
          if (svc === BACKEND) {
            // http.method is a tag of the client's span only: the backend's spans lack it
            assert.equal(found, undefined, `${p}: the tag is on a frontend span`);
          } else {
            assert.ok(found, `${p}: trace ${traceId} in ${JSON.stringify(r)}`);
            assert.deepEqual(sortSpans(found), got, `${p}: the same spans`);
          }
        }
        const p = `/api/v2/traces?serviceName=${BACKEND}&annotationQuery=${encodeURIComponent('DB Query')}`;
        const r = await getJson(serve, p);
        assert.ok(r.some((tr) => tr[0]?.traceId === traceId), `${p}: found by the server's annotation`);
      });
    }

    await t.test('GET /api/v2/services lists both sides, /api/v2/spans their names', async () => {
      assert.deepEqual(await getJson(serve, '/api/v2/services'),
        [BACKEND, FRONTEND.toLowerCase()].sort(), '/api/v2/services');
      assert.deepEqual(await getJson(serve, `/api/v2/spans?serviceName=${BACKEND}`),
        ['handle /orders/1', 'handle /orders/2'], `/api/v2/spans?serviceName=${BACKEND}`);
      const p = `/api/v2/trace/${'0'.repeat(15)}1`;
      const r = await get(serve, p);
      assert.equal(r.status, 404, `${said(p, r)}: no such trace`);
    });
  });
