// One named circuit: every call to one upstream goes through a cockatiel policy
//
//   retry (transient failures, exponential backoff) → circuit breaker (consecutive failures) → timeout (per attempt)
//
// so each attempt counts towards opening the circuit, an open circuit ends the retries at once,
// and a hung upstream costs an attempt `timeoutMs`, not a request's whole deadline.
//
// Around the policy sits the shared state (circuit-store.ts). Before each call the circuit reads
// its record: forced open by an operator → refused; opened by another instance while this one's
// breaker is closed → this breaker adopts it (opens, half-opens when the shared period ends); a
// recovery seen elsewhere after this breaker opened → it closes. When this breaker opens or
// recovers it writes that for the others. A store that cannot be read or written never fails a
// call: the last known record and this instance's breaker decide (the registry counts and logs).
import {
  CircuitState as BreakerState,
  ConsecutiveBreaker,
  ExponentialBackoff,
  TimeoutStrategy,
  circuitBreaker,
  handleWhen,
  isBrokenCircuitError,
  retry,
  timeout,
  wrap,
  type CircuitBreakerPolicy,
  type IPolicy,
} from 'cockatiel';
import type { Logger } from '../log.js';
import type { CircuitStore, SharedCircuitState } from './circuit-store.js';
import { UpstreamUnavailable, failureText, isTransient, isUpstreamFailure } from './upstream-errors.js';

export type CircuitState = 'closed' | 'open' | 'half-open' | 'forced-open';
export type CircuitMode = 'auto' | 'forced-open';

/** The value of the circuit_breaker_state gauge for each state. */
export const STATE_CODE: Readonly<Record<CircuitState, number>> = { closed: 0, open: 1, 'half-open': 2, 'forced-open': 3 };

export interface CircuitPolicy {
  /** Consecutive failed attempts (each retry counts) that open the circuit. */
  failureThreshold: number;
  /** How long an open circuit refuses calls before one trial call is let through. */
  halfOpenAfterMs: number;
  /** The most one attempt may take; a timeout is a failure. */
  timeoutMs: number;
  /** Attempts after the first for a transient failure (0: none). */
  retries: number;
  /** First backoff delay; it grows exponentially (with jitter) up to retryMaxDelayMs. */
  retryDelayMs: number;
  retryMaxDelayMs: number;
}

export interface CircuitOptions extends CircuitPolicy {
  name: string;
  /** Counts against the upstream (default: anything but a 4xx answer and our own AppErrors). */
  isFailure?: (err: unknown) => boolean;
  /** Worth retrying at once (default: timeouts, connection failures, 5xx/408/429). */
  isTransient?: (err: unknown) => boolean;
}

export interface CircuitView {
  name: string;
  state: CircuitState;
  mode: CircuitMode;
  /** When the current state began. */
  since: string;
  /** Open: when a trial call will be let through. */
  openUntil: string | null;
  /** The last failure this instance saw (or the one that opened the circuit elsewhere): a status, a code or "timed out", never the upstream's words. */
  lastFailure: string | null;
  lastFailureAt: string | null;
  failures: { consecutive: number; total: number };
  rejections: number;
  /** Who forced the circuit open (the token's sub). */
  forcedBy: string | null;
}

export interface Circuit {
  readonly name: string;
  /**
   * Runs `fn` under the circuit's policy. `signal` aborts on timeout (pass it on to fetch).
   * Throws UpstreamUnavailable (503) when the circuit refuses the call or the upstream failed;
   * an error that does not count against the upstream (a 4xx answer) is thrown as it is.
   */
  execute<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T>;
}

/** The registry's handle on a circuit. */
export interface ManagedCircuit extends Circuit {
  /** Brings this instance's breaker in line with the shared record just read. */
  apply(shared: SharedCircuitState): void;
  /** The shared record as last read (or written) by this instance. */
  shared(): SharedCircuitState;
  view(): CircuitView;
  stats(): { failures: number; rejections: number };
}

export interface CircuitEnv {
  store: CircuitStore;
  /** Reads this circuit's shared record; undefined when the store is unavailable (already counted). */
  read(name: string): Promise<SharedCircuitState | undefined>;
  /** A write to the store failed: count and log it; the call goes on. */
  storeFailed(op: string, err: unknown): void;
  log: Logger;
  /** Aborted at shutdown: calls in flight end at once and count against no one. */
  closing: AbortSignal;
}

interface Breaker {
  breaker: CircuitBreakerPolicy;
  counter: ConsecutiveBreaker;
  policy: IPolicy;
  /** When the breaker last opened (or the adopted open period began). */
  openedAt?: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

export function createCircuit(o: CircuitOptions, env: CircuitEnv): ManagedCircuit {
  const { name } = o;
  const isFailure = o.isFailure ?? isUpstreamFailure;
  const isRetryable = o.isTransient ?? isTransient;
  const retryPolicy = retry(
    handleWhen((err) => !env.closing.aborted && !isBrokenCircuitError(err) && isRetryable(err)),
    { maxAttempts: o.retries, backoff: new ExponentialBackoff({ initialDelay: o.retryDelayMs, maxDelay: o.retryMaxDelayMs }) },
  );
  // Aggressive: the attempt ends at the deadline even if `fn` ignores its signal.
  const timeoutPolicy = timeout(o.timeoutMs, TimeoutStrategy.Aggressive);
  const counts = { failures: 0, rejections: 0 };
  const writes = new Set<Promise<void>>();
  let snapshot: SharedCircuitState = {};
  let lastFailure: { text: string; at: number } | null = null;
  let since = Date.now();
  let local: Breaker = build();

  function write(op: string, run: () => Promise<void>): void {
    const p: Promise<void> = run()
      .catch((err: unknown) => env.storeFailed(op, err))
      .finally(() => writes.delete(p));
    writes.add(p);
  }

  /** A fresh breaker, closed, or open since `openedAt` (adopting another instance's open period). */
  function build(openedAt?: number): Breaker {
    const counter = new ConsecutiveBreaker(o.failureThreshold);
    const breaker = circuitBreaker(
      handleWhen((err) => !env.closing.aborted && isFailure(err)),
      {
        halfOpenAfter: o.halfOpenAfterMs,
        breaker: counter,
        // cockatiel's own snapshot format (CircuitBreakerPolicy.toJSON in 3.2.1, pinned): an open
        // breaker whose period began at openedAt, half-opening halfOpenAfter later.
        ...(openedAt !== undefined ? { initialState: { ownState: { value: BreakerState.Open, openedAt, attemptNo: 1 }, breakerState: 0 } } : {}),
      },
    );
    const b: Breaker = { breaker, counter, policy: wrap(retryPolicy, breaker, timeoutPolicy), ...(openedAt !== undefined ? { openedAt } : {}) };
    breaker.onFailure(({ handled, reason }) => {
      if (!handled) return;
      counts.failures++;
      lastFailure = { text: 'error' in reason ? failureText(reason.error, o.timeoutMs) : 'rejected answer', at: Date.now() };
    });
    // Transitions of a breaker that was since replaced (calls that were in flight on it) are ignored.
    breaker.onBreak((reason) => {
      if (local !== b || 'isolated' in reason) return;
      const at = Date.now();
      b.openedAt = since = at;
      const open = { until: at + o.halfOpenAfterMs, since: at, failure: lastFailure?.text ?? null };
      snapshot = { ...snapshot, open };
      env.log.warn({ circuit: name, failure: open.failure, openUntil: iso(open.until) }, 'circuit opened: calls fail fast until a trial call succeeds');
      write('markOpen', () => env.store.markOpen(name, open));
    });
    breaker.onHalfOpen(() => {
      if (local !== b) return;
      since = Date.now();
      env.log.info({ circuit: name }, 'circuit half-open: letting one trial call through');
    });
    breaker.onReset(() => {
      if (local !== b) return;
      const at = Date.now();
      since = at;
      delete b.openedAt;
      const { open: _open, ...rest } = snapshot;
      snapshot = { ...rest, closedAt: at };
      env.log.info({ circuit: name }, 'circuit closed: the upstream answered the trial call');
      write('markClosed', () => env.store.markClosed(name, at));
    });
    return b;
  }

  function apply(shared: SharedCircuitState): void {
    snapshot = shared;
    const state = local.breaker.state;
    const now = Date.now();
    const localUntil = state === BreakerState.Open && local.openedAt !== undefined ? local.openedAt + o.halfOpenAfterMs : undefined;
    if (shared.open && shared.open.until > now && (state === BreakerState.Closed || (localUntil !== undefined && localUntil < shared.open.until))) {
      // Another instance's breaker opened (or its trial call failed, reopening it for longer than
      // this breaker's period): this one does not hammer the upstream either.
      local = build(shared.open.until - o.halfOpenAfterMs);
      since = shared.open.since;
      env.log.info({ circuit: name, openUntil: iso(shared.open.until) }, 'circuit opened by another instance');
    } else if (state === BreakerState.Open && shared.closedAt !== undefined && local.openedAt !== undefined && shared.closedAt > local.openedAt) {
      // Another instance's trial call succeeded after this breaker opened: the upstream is back.
      local = build();
      since = shared.closedAt;
      env.log.info({ circuit: name }, 'circuit closed by another instance\'s successful trial call');
    }
  }

  /** When an open circuit lets a trial call through. */
  function openUntil(): number | undefined {
    if (local.breaker.state === BreakerState.Open && local.openedAt !== undefined) return local.openedAt + o.halfOpenAfterMs;
    return snapshot.open?.until;
  }

  function effective(): { state: CircuitState; since: number; openUntil?: number } {
    if (snapshot.forced) return { state: 'forced-open', since: snapshot.forced.since };
    switch (local.breaker.state) {
      case BreakerState.Open: {
        const until = openUntil()!;
        // cockatiel half-opens on the next call; past the open period that call is a trial, so say so.
        return until > Date.now() ? { state: 'open', since, openUntil: until } : { state: 'half-open', since: until };
      }
      case BreakerState.HalfOpen:
        return { state: 'half-open', since };
      default:
        return { state: 'closed', since };
    }
  }

  function refused(reason: 'open' | 'forced-open'): UpstreamUnavailable {
    counts.rejections++;
    if (reason === 'forced-open') return new UpstreamUnavailable(name, reason, `${name} is unavailable: its circuit was forced open by an operator`);
    const until = openUntil();
    const retryAfterSeconds = until ? Math.max(1, Math.ceil((until - Date.now()) / 1000)) : 1;
    return new UpstreamUnavailable(name, reason, `${name} is unavailable (circuit open after repeated failures)`, { retryAfterSeconds });
  }

  function outcome(err: unknown, attempts: number): unknown {
    if (env.closing.aborted) return new UpstreamUnavailable(name, 'closing', `${name} is unavailable: shutting down`, { cause: err });
    // Refused before any attempt; after one, the circuit opened on this very call's failures.
    if (isBrokenCircuitError(err) && attempts === 0) return refused('open');
    if (isBrokenCircuitError(err) || isFailure(err)) {
      return new UpstreamUnavailable(name, 'failed', `${name} is unavailable (${lastFailure?.text ?? failureText(err, o.timeoutMs)})`, { cause: err });
    }
    return err;
  }

  return {
    name,
    async execute<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
      if (env.closing.aborted) throw new UpstreamUnavailable(name, 'closing', `${name} is unavailable: shutting down`);
      const shared = await env.read(name);
      if (shared) apply(shared);
      if (snapshot.forced) throw refused('forced-open');
      let attempts = 0;
      try {
        return await local.policy.execute(({ signal }) => {
          attempts++;
          return fn(signal);
        }, env.closing);
      } catch (err) {
        throw outcome(err, attempts);
      } finally {
        // The open/closed record is written before the caller hears of it (bounded by the store's timeout).
        if (writes.size > 0) await Promise.all(writes);
      }
    },
    apply,
    shared: () => snapshot,
    view() {
      const s = effective();
      return {
        name,
        state: s.state,
        mode: snapshot.forced ? 'forced-open' : 'auto',
        since: iso(s.since),
        openUntil: s.openUntil !== undefined ? iso(s.openUntil) : null,
        lastFailure: lastFailure?.text ?? snapshot.open?.failure ?? null,
        lastFailureAt: lastFailure ? iso(lastFailure.at) : null,
        failures: { consecutive: local.counter.state, total: counts.failures },
        rejections: counts.rejections,
        forcedBy: snapshot.forced?.by ?? null,
      };
    },
    stats: () => ({ ...counts }),
  };
}
