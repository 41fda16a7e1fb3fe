// Where circuits keep the state instances share: Redis in server mode, so a circuit one instance
// opens is open for all of them and an operator's forced-open holds everywhere; in process in
// embedded mode (one instance: the store only holds the operator's setting).
//
// What is shared is small and self-expiring: when the circuit is open until (set by the instance
// whose breaker opened, expiring then), when it last recovered (so instances that had adopted the
// open state close too), and the operator's forced-open (kept until set back to auto). Failure
// counts stay per instance: merging them would cost a write per call for little gain.

/** What one circuit's shared record says. Times are epoch milliseconds. */
export interface SharedCircuitState {
  /** Open until `until` (then one trial call per instance decides). */
  open?: { until: number; since: number; failure: string | null };
  /** A trial call succeeded then: instances whose breaker opened earlier may close. */
  closedAt?: number;
  /** Held open by an operator until set back to auto. */
  forced?: { since: number; by: string };
}

export interface CircuitStore {
  /** True when other instances see what this store holds (Redis). */
  readonly shared: boolean;
  read(names: readonly string[]): Promise<Map<string, SharedCircuitState>>;
  markOpen(name: string, open: NonNullable<SharedCircuitState['open']>): Promise<void>;
  markClosed(name: string, at: number): Promise<void>;
  /** null: back to auto. */
  setForced(name: string, forced: SharedCircuitState['forced'] | null): Promise<void>;
  close(): Promise<void>;
}

/** How long a recovery is remembered: far longer than any open period it has to end. */
export const CLOSED_MEMORY_MS = 3_600_000;

/** Embedded mode: one process, so a Map is the whole truth. */
export function createMemoryCircuitStore(now: () => number = Date.now): CircuitStore {
  const states = new Map<string, SharedCircuitState>();
  const entry = (name: string) => states.get(name) ?? states.set(name, {}).get(name)!;
  return {
    shared: false,
    async read(names) {
      const t = now();
      return new Map(
        names.map((name) => {
          const s = states.get(name) ?? {};
          // Expire as Redis would, so both stores behave alike.
          const open = s.open && s.open.until > t ? s.open : undefined;
          const closedAt = s.closedAt !== undefined && s.closedAt > t - CLOSED_MEMORY_MS ? s.closedAt : undefined;
          return [name, { ...(open ? { open } : {}), ...(closedAt !== undefined ? { closedAt } : {}), ...(s.forced ? { forced: s.forced } : {}) }];
        }),
      );
    },
    async markOpen(name, open) {
      entry(name).open = open;
    },
    async markClosed(name, at) {
      const e = entry(name);
      delete e.open;
      e.closedAt = at;
    },
    async setForced(name, forced) {
      if (forced) entry(name).forced = forced;
      else delete entry(name).forced;
    },
    async close() {},
  };
}
