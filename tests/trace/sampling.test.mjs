// Head sampling with a real remote sampler: OpenTelemetry's JaegerRemoteSampler
// (@opentelemetry/sampler-jaeger-remote) polls Sonde's Jaeger remote-sampling endpoint
// (GET /api/sampling?service=S) for a configuration set with PUT /ca/sampling that has
// per-operation strategies, and the SDK then samples as told: the test sends spans of three
// operations through the OTLP exporter and reads back, through Zipkin's query API, exactly the
// operations the strategies keep (docs/tracing.md, "Sampling").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOffSampler, BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { JaegerRemoteSampler } from '@opentelemetry/sampler-jaeger-remote';
import {
  POLL_EVERY_MS, POLL_TRIES, RecordingExporter, assertExported, getJson, request, said, sleep,
  traceServe, withTimeout,
} from './support.mjs';

const SERVICE = 'shop';
const PER_OP = 20; // spans of each operation
const CONFIG = {
  default_strategy: {
    type: 'probabilistic', param: 1,
    operation_strategies: [{ operation: 'GET /health', type: 'probabilistic', param: 0 }],
  },
  service_strategies: [{
    service: SERVICE, type: 'probabilistic', param: 0,
    operation_strategies: [{ operation: 'GET /checkout', type: 'probabilistic', param: 1 }],
  }],
};

// A JaegerRemoteSampler whose polling timer the test can stop: the sampler starts a setInterval
// it never clears (it would keep this process alive), so its handle is caught at construction.
function remoteSampler(url) {
  const orig = globalThis.setInterval;
  let timer;
  globalThis.setInterval = (...a) => (timer = orig(...a));
  try {
    const sampler = new JaegerRemoteSampler({
      endpoint: `${url}api`, serviceName: SERVICE, poolingInterval: 3_600_000,
      initialSampler: new AlwaysOffSampler(),
    });
    return { sampler, stop: () => clearInterval(timer) };
  } finally {
    globalThis.setInterval = orig;
  }
}

test('a Jaeger remote sampler follows per-operation strategies served by Sonde',
  { timeout: 120_000 }, async (t) => {
    const serve = await traceServe(t);
    const put = await request(serve, '/ca/sampling', {
      method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(CONFIG),
    });
    assert.equal(put.status, 200, said('PUT /ca/sampling', put));

    // what the endpoint answers, as Jaeger's strategy store would: the service's own operation,
    // then the default's; other operations at the service's probability
    const op = (operation, rate) => ({ operation, probabilisticSampling: { samplingRate: rate } });
    assert.deepEqual(await getJson(serve, `/api/sampling?service=${SERVICE}`), {
      strategyType: 'PROBABILISTIC', probabilisticSampling: { samplingRate: 0 },
      operationSampling: {
        defaultSamplingProbability: 0, defaultLowerBoundTracesPerSecond: 0,
        perOperationStrategies: [op('GET /checkout', 1), op('GET /health', 0)],
      },
    });
    assert.deepEqual(await getJson(serve, '/api/sampling?service=web'), {
      strategyType: 'PROBABILISTIC', probabilisticSampling: { samplingRate: 1 },
      operationSampling: {
        defaultSamplingProbability: 1, defaultLowerBoundTracesPerSecond: 0,
        perOperationStrategies: [op('GET /health', 0)],
      },
    });
    const bad = await request(serve, '/api/sampling');
    assert.equal(bad.status, 400, said('/api/sampling', bad));

    const { sampler, stop } = remoteSampler(serve.url);
    t.after(stop);
    await withTimeout(sampler.getAndUpdateSampler(), 10_000, 'the sampler polls /api/sampling');
    assert.match(String(sampler), /PerOperationSampler/, `the sampler took the strategies: ${sampler}`);

    const rec = new RecordingExporter(new OTLPTraceExporter({ url: `${serve.url}v1/traces` }));
    const provider = new BasicTracerProvider({
      sampler,
      resource: resourceFromAttributes({ 'service.name': SERVICE }),
      spanProcessors: [new BatchSpanProcessor(rec)],
    });
    const tracer = provider.getTracer('sonde-sampling-test');
    for (const name of ['GET /checkout', 'GET /health', 'GET /cart'])
      for (let i = 0; i < PER_OP; i++) tracer.startSpan(name).end();
    await withTimeout(provider.forceFlush(), 30_000, 'forceFlush');
    assertExported(rec, 'the sampled spans');
    await provider.shutdown();

    // exactly the checkout traces are there, and nothing else of the service
    let traces = [];
    for (let i = 0; i < POLL_TRIES && traces.length < PER_OP; i++) {
      if (i) await sleep(POLL_EVERY_MS);
      traces = await getJson(serve, `/api/v2/traces?serviceName=${SERVICE}&limit=1000`);
    }
    assert.equal(traces.length, PER_OP, `${PER_OP} traces kept: ${JSON.stringify(traces.slice(0, 3))}`);
    for (const tr of traces) {
      assert.equal(tr.length, 1);
      assert.equal(tr[0].name, 'get /checkout');
    }
    assert.deepEqual(await getJson(serve, `/api/v2/spans?serviceName=${SERVICE}`), ['get /checkout']);
  });
