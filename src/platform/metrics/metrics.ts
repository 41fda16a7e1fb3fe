// Prometheus metrics (prom-client). One registry per Deps, not prom-client's global one: tests
// run many servers in one process, and each must report only its own.
//
// Label values are bounded: route templates (never ids), methods, status codes, error codes.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { requestHistogram, type RequestHistogram } from './request-histogram.js';

export interface Metrics {
  readonly registry: Registry;
  readonly httpDuration: RequestHistogram;
  readonly httpErrors: Counter<'code'>;
  readonly versionConflicts: Counter;
  readonly idempotencyReplays: Counter;
  readonly dbQueryDuration: Histogram<'operation' | 'outcome'>;
  /** Seconds between an event's change and its dispatch, for the last dispatched batch (0 when the outbox is empty). */
  readonly outboxLag: Gauge;
  readonly eventsDispatched: Counter;
  /** A labelled counter the caller increments. */
  counter<L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L>;
  /** A gauge read when scraped. */
  gauge(name: string, help: string, read: () => number): void;
  /** A counter fed from a cumulative count that something else keeps (e.g. the cache's stats), read when scraped. */
  cumulative(name: string, help: string, read: () => number): void;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    httpDuration: requestHistogram(registry, 'http_request_duration_seconds', 'HTTP request duration by method, route template and status', [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]),
    httpErrors: new Counter({ name: 'http_errors_total', help: 'Error responses by error code (the contract\'s code)', labelNames: ['code'], registers }),
    versionConflicts: new Counter({ name: 'version_conflicts_total', help: 'Writes refused because the resource changed since the If-Match version (412)', registers }),
    idempotencyReplays: new Counter({ name: 'idempotency_replays_total', help: 'Requests answered with the recorded response of an earlier one with the same Idempotency-Key', registers }),
    dbQueryDuration: new Histogram({
      name: 'db_query_duration_seconds',
      help: 'Database operations (a read, an autocommitted write or a transaction) by kind and outcome',
      labelNames: ['operation', 'outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers,
    }),
    outboxLag: new Gauge({ name: 'outbox_lag_seconds', help: 'Age of the oldest event in the last dispatched batch when it was dispatched (0: outbox empty)', registers }),
    eventsDispatched: new Counter({ name: 'events_dispatched_total', help: 'Outbox events dispatched by this instance', registers }),
    counter(name, help, labelNames) {
      return new Counter({ name, help, labelNames: [...labelNames], registers });
    },
    gauge(name, help, read) {
      new Gauge({ name, help, registers, collect() { this.set(read()); } });
    },
    cumulative(name, help, read) {
      let last = 0;
      new Counter({
        name,
        help,
        registers,
        collect() {
          const now = read();
          if (now > last) this.inc(now - last);
          last = Math.max(last, now);
        },
      });
    },
  };
}
