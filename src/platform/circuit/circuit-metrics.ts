// The circuits' Prometheus series, read from the registry when scraped (one label: the circuit's
// name, a fixed set). The state is read after refreshing from the shared store, so an instance
// that makes no calls still reports a circuit another instance opened or an operator forced.
import { Counter, Gauge } from 'prom-client';
import type { Metrics } from '../metrics/metrics.js';
import { STATE_CODE } from './circuit.js';
import type { CircuitRegistry } from './registry.js';

/** A counter per circuit fed from a cumulative count kept by the registry (every circuit shows, from 0). */
function perCircuit(m: Metrics, name: string, help: string, read: () => [string, number][]): void {
  const last = new Map<string, number>();
  new Counter({
    name,
    help,
    labelNames: ['circuit'],
    registers: [m.registry],
    collect() {
      for (const [circuit, now] of read()) {
        const before = last.get(circuit) ?? 0;
        this.inc({ circuit }, Math.max(0, now - before));
        last.set(circuit, Math.max(before, now));
      }
    },
  });
}

export function registerCircuitMetrics(m: Metrics, circuits: CircuitRegistry): void {
  new Gauge({
    name: 'circuit_breaker_state',
    help: 'State of each circuit breaker (external calls) as this instance sees it: 0 closed, 1 open, 2 half-open (the next call is a trial), 3 forced open by an operator',
    labelNames: ['circuit'],
    registers: [m.registry],
    async collect() {
      for (const v of await circuits.views()) this.set({ circuit: v.name }, STATE_CODE[v.state]);
    },
  });
  perCircuit(m, 'circuit_breaker_rejections_total', 'Calls refused without reaching the upstream because its circuit was open or forced open', () =>
    circuits.stats().circuits.map((c) => [c.name, c.rejections]),
  );
  perCircuit(m, 'circuit_breaker_failures_total', 'Failed attempts to reach an upstream (errors, 5xx answers, timeouts; each retry counts)', () =>
    circuits.stats().circuits.map((c) => [c.name, c.failures]),
  );
  m.cumulative(
    'circuit_breaker_fallbacks_total',
    "Reads and writes of the shared circuit state (Redis) that failed; this instance's breakers decided alone",
    () => circuits.stats().fallbacks,
  );
}
