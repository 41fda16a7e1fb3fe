// Where the OpenTelemetry SDK's errors go, on each thread that runs a part of it.
import { setGlobalErrorHandler } from '@opentelemetry/core';

/**
 * The SDK's errors — mostly failed exports (collector down: those spans are lost) — go to stderr,
 * at most one line a minute per thread. Each thread has its own SDK, so each installs this.
 */
export function reportSdkErrors(): void {
  let lastReport = 0;
  setGlobalErrorHandler((err) => {
    if (Date.now() - lastReport < 60_000) return;
    lastReport = Date.now();
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${JSON.stringify({ level: 'warn', time: new Date().toISOString(), service: 'carebase', msg: 'tracing: the OpenTelemetry SDK failed (spans may be lost)', err: { message: message.slice(0, 300) } })}\n`);
  });
}
