// The request histogram prints exactly what prom-client's own Histogram prints for the same
// observations: dashboards and alert rules (ops/) cannot tell them apart.
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { requestHistogram } from './request-histogram.js';

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const NAME = 'http_request_duration_seconds';
const HELP = 'HTTP request duration by method, route template and status';

/** Observations on bucket bounds, between them, above the last, and of a route whose template needs escaping. */
const OBSERVED: [string, string, number, number][] = [
  ['GET', '/v1/patients/:id', 200, 0.0004],
  ['GET', '/v1/patients/:id', 200, 0.005],
  ['GET', '/v1/patients/:id', 200, 0.0051],
  ['GET', '/v1/patients/:id', 404, 0.02],
  ['PATCH', '/v1/patients/:id', 412, 0.3],
  ['POST', '/v1/patients', 201, 12],
  ['GET', 'unmatched', 404, 0.001],
  ['GET', '/v1/odd/"quoted"\\path', 200, 1],
];

describe('request histogram', () => {
  it('prints the series, buckets, sums and counts prom-client prints, in text and as JSON', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const h = requestHistogram(ours, NAME, HELP, BUCKETS);
    const reference = new Histogram({ name: NAME, help: HELP, labelNames: ['method', 'route', 'status'], buckets: BUCKETS, registers: [theirs] });
    for (const [method, route, status, seconds] of OBSERVED) {
      h.observe(method, route, status, seconds);
      reference.observe({ method, route, status: String(status) }, seconds);
    }
    const text = await ours.metrics();
    expect(text).toBe(await theirs.metrics());
    expect(text).toContain('http_request_duration_seconds_count{method="GET",route="/v1/patients/:id",status="200"} 3');
    expect(text).toContain('http_request_duration_seconds_bucket{le="0.005",method="GET",route="/v1/patients/:id",status="200"} 2');
    expect(text).toContain('http_request_duration_seconds_bucket{le="10",method="POST",route="/v1/patients",status="201"} 0');
    expect(text).toContain('http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/v1/patients",status="201"} 1');

    // As JSON, each value with the series' labels merged into its own.
    const json = async (r: Registry) => (await r.getMetricsAsJSON()).flatMap((m) => m.values.map((v) => ({ metricName: (v as { metricName?: string }).metricName, labels: v.labels, value: v.value })));
    expect(await json(ours)).toEqual(await json(theirs));
  });

  it('starts empty, and reset() forgets every series', async () => {
    const r = new Registry();
    const h = requestHistogram(r, NAME, HELP, BUCKETS);
    expect(await r.metrics()).toBe(`# HELP ${NAME} ${HELP}\n# TYPE ${NAME} histogram\n`);
    h.observe('GET', '/v1/patients', 200, 0.01);
    expect(await r.metrics()).toContain('_count{method="GET",route="/v1/patients",status="200"} 1');
    r.resetMetrics();
    expect(await r.metrics()).toBe(`# HELP ${NAME} ${HELP}\n# TYPE ${NAME} histogram\n`);
  });
});
