// http_request_duration_seconds, counted without prom-client's per-observation work.
//
// prom-client's Histogram.observe() validates the label object, builds a hash string from it and
// looks that string up, on every call: on a cached read it was the largest cost of request
// metrics (bench/RESULTS.md, sixteenth session). A request's series is a route template × method ×
// status, few and known when the request ends, so it is found here through maps keyed by those
// values themselves (strings the router already holds, a number) and counted in place. The
// registry reads the counts when scraped, through the methods it calls on any metric
// (`getForPromString()` for the text format, `get()` for JSON), and formats them as it formats
// its own histograms.
import type { Registry } from 'prom-client';

interface Series {
  readonly labels: { method: string; route: string; status: string };
  /** Per bucket (not cumulative), and one more for observations above the last bound. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

export interface RequestHistogram {
  observe(method: string, route: string, status: number, seconds: number): void;
}

/** A histogram labelled method, route, status, registered on `registry` under `name`. */
export function requestHistogram(registry: Registry, name: string, help: string, buckets: readonly number[]): RequestHistogram {
  // route → method → status → series
  let series = new Map<string, Map<string, Map<number, Series>>>();
  const metric = {
    name,
    help,
    type: 'histogram' as const,
    aggregator: 'sum' as const,
    // What prom-client's own Histogram gives: per series, cumulative buckets with `le`, then +Inf,
    // _sum and _count; for the text format the series' labels apart (shared), for JSON merged.
    getForPromString: () => Promise.resolve(read(true)),
    get: () => Promise.resolve(read(false)),
    reset() {
      series = new Map();
    },
  };
  type Value = { labels: Record<string, string | number>; sharedLabels?: Series['labels']; value: number; metricName: string };
  function read(shared: boolean) {
    const values: Value[] = [];
    const value = (s: Series, metricName: string, v: number, le?: string | number): Value => {
      const own: Record<string, string | number> = le === undefined ? {} : { le };
      return shared ? { labels: own, sharedLabels: s.labels, value: v, metricName } : { labels: { ...own, ...s.labels }, value: v, metricName };
    };
    for (const byMethod of series.values()) {
      for (const byStatus of byMethod.values()) {
        for (const s of byStatus.values()) {
          let acc = 0;
          buckets.forEach((le, i) => values.push(value(s, `${name}_bucket`, (acc += s.counts[i]!), le)));
          values.push(value(s, `${name}_bucket`, s.count, '+Inf'), value(s, `${name}_sum`, s.sum), value(s, `${name}_count`, s.count));
        }
      }
    }
    return { name, help, type: metric.type, values, aggregator: metric.aggregator };
  }
  registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);

  function seriesOf(method: string, route: string, status: number): Series {
    let byMethod = series.get(route);
    if (!byMethod) series.set(route, (byMethod = new Map()));
    let byStatus = byMethod.get(method);
    if (!byStatus) byMethod.set(method, (byStatus = new Map()));
    let s = byStatus.get(status);
    if (!s) byStatus.set(status, (s = { labels: { method, route, status: String(status) }, counts: new Float64Array(buckets.length + 1), sum: 0, count: 0 }));
    return s;
  }

  return {
    observe(method, route, status, seconds) {
      const s = seriesOf(method, route, status);
      let i = 0;
      while (i < buckets.length && seconds > buckets[i]!) i++;
      s.counts[i]!++;
      s.sum += seconds;
      s.count++;
    },
  };
}
