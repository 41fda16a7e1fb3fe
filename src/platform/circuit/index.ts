// Circuit breakers for external calls (issue 6): see registry.ts for the shape, circuit.ts for the
// policy and the shared state, README "Circuit breakers" for operations.
import type { Logger } from '../log.js';
import type { CircuitPolicy } from './circuit.js';
import { createMemoryCircuitStore } from './circuit-store.js';
import { createRedisCircuitStore } from './redis-circuit-store.js';
import { createCircuitRegistry, type CircuitRegistry } from './registry.js';

export { STATE_CODE, type Circuit, type CircuitMode, type CircuitPolicy, type CircuitState, type CircuitView } from './circuit.js';
export { createMemoryCircuitStore, type CircuitStore, type SharedCircuitState } from './circuit-store.js';
export { circuitKeyPrefix, createRedisCircuitStore } from './redis-circuit-store.js';
export { CircuitStoreUnavailable, createCircuitRegistry, type CircuitRegistry } from './registry.js';
export { registerCircuitMetrics } from './circuit-metrics.js';
export { UpstreamStatusError, UpstreamUnavailable, failureText, isTransient, isUpstreamFailure } from './upstream-errors.js';

export interface CreateCircuitsOptions {
  log: Logger;
  policy: CircuitPolicy;
  /** Set: state shared through Redis by every instance with the same scope. Unset: in process. */
  redisUrl?: string;
  scope: string;
}

/** Picks the store once, at start, as the other adapters do. */
export function createCircuits(o: CreateCircuitsOptions): CircuitRegistry {
  const store = o.redisUrl ? createRedisCircuitStore({ url: o.redisUrl, scope: o.scope }) : createMemoryCircuitStore();
  return createCircuitRegistry({ store, log: o.log, defaults: o.policy });
}
