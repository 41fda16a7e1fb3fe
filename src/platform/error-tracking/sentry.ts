// Sentry as the error tracker (SENTRY_DSN). Only loaded when configured.
//
// @sentry/node-core's light entry point: no OpenTelemetry, no tracer provider, no
// instrumentation (our own tracing, src/platform/tracing, does that). One client of our own,
// not Sentry.init(): nothing global is registered (no async-context strategy, no scope data
// shared with anything else, no SENTRY_* variables read behind config.ts's back — only the
// transport's standard https_proxy/http_proxy/no_proxy), and no default
// integration runs — none captures request bodies, headers, local variables, source lines,
// console output or HTTP breadcrumbs. Events are built from an error and its request's
// RequestFacts only, and beforeSend rebuilds each one from an allow-list (scrub.ts).
// No performance data: tracesSampleRate is unset and transactions are dropped.
import { hostname } from 'node:os';
import type { ErrorTrackingConfig } from '../../config.js';
import type { Logger } from '../log.js';
import { setErrorTracker, type CrashOrigin, type ErrorTracker, type RequestFacts } from './index.js';
import { scrubEvent, type StackParser } from './scrub.js';
import type { TraceContext } from '../tracing/tracing.js';

export async function createSentryTracker(c: ErrorTrackingConfig, log: Logger): Promise<ErrorTracker> {
  const Sentry = await import('@sentry/node-core/light');
  const parse = Sentry.defaultStackParser as StackParser;
  const client = new Sentry.LightNodeClient({
    dsn: c.dsn,
    environment: c.environment,
    release: c.release,
    sampleRate: c.sampleRate,
    serverName: hostname(),
    integrations: [],
    stackParser: Sentry.defaultStackParser,
    // Failed deliveries are logged (status or network error only), then dropped as Sentry does.
    transport: (options) => {
      const transport = Sentry.makeNodeTransport(options);
      return {
        ...transport,
        send: (envelope) =>
          transport.send(envelope).then(
            (r) => {
              if (r.statusCode !== undefined && (r.statusCode < 200 || r.statusCode >= 300)) log.warn({ statusCode: r.statusCode }, 'error tracking: Sentry refused an event');
              return r;
            },
            (err: unknown) => {
              log.warn({ err }, 'error tracking: Sentry is unreachable; event dropped');
              throw err;
            },
          ),
      };
    },
    sendDefaultPii: false,
    maxBreadcrumbs: 0,
    beforeBreadcrumb: () => null,
    beforeSend: (event, hint) => scrubEvent(event, hint, parse),
    beforeSendTransaction: () => null,
    sendClientReports: false,
    attachStacktrace: false,
  });
  client.init();

  const capture = (err: unknown, tags: Record<string, string>, level: 'error' | 'fatal', mechanism: { type: string; handled: boolean }, trace?: TraceContext) => {
    try {
      const scope = new Sentry.Scope();
      scope.setLevel(level);
      scope.setTags(tags);
      // The trace this happened in (our OpenTelemetry tracing, when it is on and sampled), to find it from the report.
      if (trace) {
        scope.setTag('trace_id', trace.traceId);
        scope.setContext('otel', { trace_id: trace.traceId, span_id: trace.spanId });
      }
      client.captureException(err, { mechanism, originalException: err }, scope);
    } catch (e) {
      log.warn({ err: e }, 'error tracking: could not capture an error');
    }
  };

  return {
    captureRequestError(err: unknown, f: RequestFacts) {
      capture(
        err,
        {
          method: f.method,
          route: f.route,
          status_code: String(f.status),
          error_code: f.code,
          request_id: f.requestId,
          ...(f.tenant ? { tenant: f.tenant } : {}),
          ...(f.roles && f.roles.length > 0 ? { roles: [...f.roles].sort().join(',') } : {}),
        },
        'error',
        { type: 'carebase.http', handled: true },
        f.trace,
      );
    },
    captureCrash(err: unknown, origin: CrashOrigin) {
      capture(err, { origin }, 'fatal', { type: origin === 'uncaughtException' ? 'onuncaughtexception' : 'onunhandledrejection', handled: false });
    },
    flush: (timeoutMs) => Promise.resolve(client.flush(timeoutMs)).catch(() => false),
    close: (timeoutMs) => Promise.resolve(client.close(timeoutMs)).catch(() => false),
  };
}

/**
 * Reports an uncaught exception or unhandled rejection (Node raises those as uncaught exceptions
 * too) before the process goes down, then lets Node do what it would have done without this
 * listener: with no other listener, crash (the error on stderr, exit code 1). The report is
 * waited for at most flushMs. Returns a function that removes the listener.
 */
export function reportCrashes(tracker: ErrorTracker, flushMs: number): () => void {
  let crashing = false;
  const onCrash = (err: unknown, origin: NodeJS.UncaughtExceptionOrigin) => {
    if (crashing) return; // the first crash is being reported; the process goes down right after
    crashing = true;
    tracker.captureCrash(err, origin);
    let done = false;
    const resume = () => {
      if (done) return;
      done = true;
      process.off('uncaughtException', onCrash);
      // Node's default for an uncaught exception, unless someone else handles them.
      if (process.listenerCount('uncaughtException') === 0) {
        setImmediate(() => {
          throw err; // re-raised once the crash was reported to Sentry: Node's own crash follows
        });
      }
    };
    // Referenced, so the process cannot exit 0 on an empty event loop meanwhile.
    const deadline = setTimeout(resume, flushMs + 500);
    void tracker.flush(flushMs).finally(() => {
      clearTimeout(deadline);
      resume();
    });
  };
  process.on('uncaughtException', onCrash);
  return () => process.off('uncaughtException', onCrash);
}

/** How long a shutdown or a crash waits for queued reports. */
export const FLUSH_TIMEOUT_MS = 2000;

/**
 * `carebase serve`: creates the Sentry tracker, installs it as this process's tracker and reports
 * crashes. close() flushes (at most timeoutMs) and uninstalls both.
 */
export async function startErrorTracking(c: ErrorTrackingConfig, log: Logger): Promise<{ close(timeoutMs?: number): Promise<boolean> }> {
  const tracker = await createSentryTracker(c, log);
  setErrorTracker(tracker);
  const stopCrashReports = reportCrashes(tracker, FLUSH_TIMEOUT_MS);
  log.info({ environment: c.environment, release: c.release, sampleRate: c.sampleRate }, 'error tracking on (Sentry)');
  return {
    close(timeoutMs = FLUSH_TIMEOUT_MS) {
      stopCrashReports();
      setErrorTracker(undefined);
      return tracker.close(timeoutMs);
    },
  };
}
