// Error tracking, as the rest of the code sees it: report a failed request or a crash to
// whichever tracker this process runs (Sentry when SENTRY_DSN is set, nothing otherwise).
// This module never loads the Sentry SDK; sentry.ts does, only when it is configured.
//
// The tracker is process-wide, as Sentry's own client and the process's crash handlers are:
// `carebase serve` installs it (main.ts) and the HTTP error handler reports through it.

import type { TraceContext } from '../tracing/tracing.js';

/** What a failed request may tell the tracker: no URL, query string, header or body, by construction. */
export interface RequestFacts {
  readonly method: string;
  /** The route template (`/v1/patients/:id`), never the URL. */
  readonly route: string;
  readonly requestId: string;
  readonly status: number;
  /** The contract's error code (`INTERNAL`). */
  readonly code: string;
  readonly tenant?: string;
  /** The token's roles; never its subject (a patient's `sub` can identify the patient). */
  readonly roles?: readonly string[];
  /** The request's span, when it is traced. */
  readonly trace?: TraceContext;
}

export type CrashOrigin = 'uncaughtException' | 'unhandledRejection';

export interface ErrorTracker {
  /** A request answered with an error we report (see REPORTED_CODES). Never throws. */
  captureRequestError(err: unknown, facts: RequestFacts): void;
  /** The process is about to go down. Never throws. */
  captureCrash(err: unknown, origin: CrashOrigin): void;
  /** Sends what is queued; false when timeoutMs passed first. Never rejects. */
  flush(timeoutMs: number): Promise<boolean>;
  /** Flushes (bounded by timeoutMs) and stops sending. Never rejects. */
  close(timeoutMs: number): Promise<boolean>;
}

/**
 * The contract codes worth an error report: bugs. The other 5xx are expected conditions with
 * their own signals — SERVICE_UNAVAILABLE (database down, or draining for shutdown) and
 * UPSTREAM_UNAVAILABLE go to the health monitor and ALERT_WEBHOOK_URL; TIMEOUT (a statement or
 * request past its deadline) to the metrics and the performance report. Reporting those would
 * flood the tracker during an outage with stack traces of the timeout machinery, not of a cause.
 */
export const REPORTED_CODES: ReadonlySet<string> = new Set(['INTERNAL']);

let active: ErrorTracker | undefined;

/** Installs (or, with undefined, removes) this process's tracker; returns the previous one. */
export function setErrorTracker(tracker: ErrorTracker | undefined): ErrorTracker | undefined {
  const previous = active;
  active = tracker;
  return previous;
}

export function reportRequestError(err: unknown, facts: RequestFacts): void {
  if (active && REPORTED_CODES.has(facts.code)) active.captureRequestError(err, facts);
}
