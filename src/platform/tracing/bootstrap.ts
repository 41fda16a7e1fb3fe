// Imported by bin/carebase.mjs before src/main.ts: starts OpenTelemetry tracing when
// OTEL_EXPORTER_OTLP_ENDPOINT is set. Nothing is patched (spans are started by our own code, see
// tracing.ts), so the order only matters in that the SDK is up before the first request.
//
// Only the long-running commands are traced, `serve` (the default) and `worker`: one-shot commands
// (migrate, token, keys rotate…) exit without waiting for an exporter. With tracing off this loads nothing more than config.ts,
// which main.ts loads anyway.
import { loadConfig, type TracingConfig } from '../../config.js';

const command = process.argv[2] ?? 'serve';
if (command === 'serve' || command === 'worker') {
  let tracing: TracingConfig | undefined;
  try {
    tracing = loadConfig().tracing;
  } catch {
    // An invalid configuration is main.ts's to report (one line per problem, exit 2).
  }
  if (tracing) {
    try {
      const { startTracing } = await import('./tracer.js');
      await startTracing(tracing);
    } catch (err) {
      // Observability is not worth an outage: said once, loudly, and the service starts untraced.
      const message = err instanceof Error ? err.message : String(err);
      process.stderr.write(`${JSON.stringify({ level: 'error', time: new Date().toISOString(), service: 'carebase', msg: 'tracing: could not start; running without it', err: { message: message.slice(0, 300) } })}\n`);
    }
  }
}

export {};
