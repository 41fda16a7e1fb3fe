// The named circuits of one process, one per upstream ('alert-webhook' now; 'ehr', 'calendar'
// when those integrations arrive), over one store: Redis in server mode, in process otherwise.
// container.ts builds it and defines the circuits of the upstreams that are configured.
import type { Logger } from '../log.js';
import { createCircuit, type Circuit, type CircuitMode, type CircuitOptions, type CircuitPolicy, type CircuitView, type ManagedCircuit } from './circuit.js';
import type { CircuitStore, SharedCircuitState } from './circuit-store.js';
import { failureText } from './upstream-errors.js';

export interface CircuitRegistry {
  /** True when instances share circuit state (Redis). */
  readonly shared: boolean;
  /** Adds a circuit; its policy is the registry's defaults with these overrides. */
  define(name: string, overrides?: Partial<Omit<CircuitOptions, 'name'>>): Circuit;
  get(name: string): Circuit | undefined;
  names(): string[];
  /** Every circuit's state, after reading the shared store (bounded by its timeout). */
  views(): Promise<CircuitView[]>;
  /**
   * Forces a circuit open (refusing every call, on every instance sharing the store) or sets it
   * back to auto. Throws CircuitStoreUnavailable when the store cannot record it (nothing changed).
   */
  setMode(name: string, mode: CircuitMode, actor: { sub: string; tenant: string }): Promise<CircuitView>;
  stats(): { fallbacks: number; circuits: { name: string; failures: number; rejections: number }[] };
  /** Ends calls in flight (they count against no one) and closes the store. */
  close(): Promise<void>;
}

/** The shared store could not record an operator's change. */
export class CircuitStoreUnavailable extends Error {
  constructor(cause: unknown) {
    super('the circuit store (Redis) is unavailable', { cause });
    this.name = 'CircuitStoreUnavailable';
  }
}

export interface CircuitRegistryOptions {
  store: CircuitStore;
  log: Logger;
  defaults: CircuitPolicy;
  /** At most one "store unavailable" line per interval (every fallback is counted). Default 10 s. */
  logIntervalMs?: number;
}

/** Names appear in metric labels, Redis keys and URLs. */
const NAME = /^[a-z][a-z0-9-]{0,62}$/;

export function createCircuitRegistry(o: CircuitRegistryOptions): CircuitRegistry {
  const circuits = new Map<string, ManagedCircuit>();
  const closing = new AbortController();
  const logInterval = o.logIntervalMs ?? 10_000;
  let fallbacks = 0;
  let lastLog = -Infinity;

  function storeFailed(op: string, err: unknown): void {
    fallbacks++;
    if (Date.now() - lastLog < logInterval) return;
    lastLog = Date.now();
    // ioredis' own messages ("Stream isn't writeable…", "Command timed out") carry no data: logged as they are.
    const reason = err instanceof Error ? err.message.split('\n')[0]!.slice(0, 200) : failureText(err);
    o.log.warn({ err, reason, op, fallbacks }, "circuits: shared state unavailable (Redis); this instance's breakers decide meanwhile");
  }

  async function read(names: string[]): Promise<Map<string, SharedCircuitState> | undefined> {
    try {
      return await o.store.read(names);
    } catch (err) {
      storeFailed('read', err);
      return undefined;
    }
  }

  const env = { store: o.store, storeFailed, log: o.log, closing: closing.signal, read: async (name: string) => (await read([name]))?.get(name) };

  async function refresh(names = [...circuits.keys()]): Promise<void> {
    const shared = await read(names);
    if (shared) for (const [name, s] of shared) circuits.get(name)?.apply(s);
  }

  return {
    shared: o.store.shared,
    define(name, overrides = {}) {
      if (!NAME.test(name)) throw new Error(`circuit name ${JSON.stringify(name)} must match ${NAME}`);
      if (circuits.has(name)) throw new Error(`circuit ${name} is already defined`);
      const circuit = createCircuit({ ...o.defaults, ...overrides, name }, env);
      circuits.set(name, circuit);
      return circuit;
    },
    get: (name) => circuits.get(name),
    names: () => [...circuits.keys()],
    async views() {
      await refresh();
      return [...circuits.values()].map((c) => c.view());
    },
    async setMode(name, mode, actor) {
      const circuit = circuits.get(name);
      if (!circuit) throw new Error(`no circuit ${name}`);
      const forced = mode === 'forced-open' ? { since: Date.now(), by: actor.sub } : null;
      try {
        await o.store.setForced(name, forced);
      } catch (err) {
        storeFailed('setForced', err);
        throw new CircuitStoreUnavailable(err);
      }
      // The operator's change, with who made it (ids only: sub and tenant, never PHI).
      o.log.warn({ circuit: name, mode, sub: actor.sub, tenant: actor.tenant }, 'circuit mode changed by an operator');
      // Normally read back; should that read fail, the change is known to have been stored anyway.
      const { forced: _previous, ...rest } = circuit.shared();
      circuit.apply((await read([name]))?.get(name) ?? { ...rest, ...(forced ? { forced } : {}) });
      return circuit.view();
    },
    stats: () => ({ fallbacks, circuits: [...circuits.values()].map((c) => ({ name: c.name, ...c.stats() })) }),
    async close() {
      closing.abort();
      await o.store.close();
    },
  };
}
