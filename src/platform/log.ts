// Structured JSON logs (pino). Request lines are written field by field by the request-context
// plugin, never from raw request objects, so URLs with query strings, bodies and headers stay out.
// Errors go through safeError: only our own messages (written PHI-free) are logged; database and
// parser messages can quote input values, so for those only type, code and stack frames are kept.
import pino, { type DestinationStream, type Logger } from 'pino';
import { AppError } from '../errors.js';
import { pgError } from './db/errors.js';
import { tracingEnabled, type TraceContext } from './tracing/tracing.js';

export type { Logger };

// Kept beside the logger, not on it: a property on sampled requests' loggers only would give
// request loggers two shapes and slow every log call down.
const traces = new WeakMap<Logger, TraceContext>();
const UNTRACED = Object.freeze({});

/**
 * Lines written through `log` (a request's own logger) from now on carry the trace's `trace_id`
 * and `span_id`. Cheaper than a child logger per traced request (pino
 * serializes a child's bindings when it is made), which cost a sampled request ~15 µs.
 */
export function tagWithTrace(log: Logger, trace: TraceContext): void {
  traces.set(log, trace);
}

// With tracing on, every line looks its logger's trace up; untraced lines get the frozen empty
// object back and are passed on as they are.
const traceMixin = (_line: object, _level: number, logger: Logger) => {
  const t = traces.get(logger);
  return t ? { trace_id: t.traceId, span_id: t.spanId } : UNTRACED;
};
const mergeTrace = (line: object, mixin: object) => (mixin === UNTRACED ? line : Object.assign(mixin, line));

/** An error's first message line, bounded: enough to act on (health states, alerts), never a dump. */
export const errorLine = (err: unknown): string => String((err as Error)?.message ?? err).split('\n')[0]!.slice(0, 200);

/**
 * The "    at …" lines of the stack, without the "Name: message" header V8 puts first (formatted
 * when the stack is first read, so usually the current name and message): the header is cut
 * off at the end of the message; when the stack does not show the current message (it changed
 * after the stack was read), only the trailing run of frame lines is kept. Message lines are
 * never parsed as frames either way, unless a changed message ended in lines shaped like frames.
 */
export function frameLines(e: Error): string {
  const stack = typeof e.stack === 'string' ? e.stack : '';
  const message = typeof e.message === 'string' ? e.message : '';
  let body = stack;
  const at = message ? stack.indexOf(message) : -1;
  if (at >= 0 && !stack.slice(0, at).includes('\n')) body = stack.slice(at + message.length);
  else if (!message) body = stack.slice(Math.max(0, stack.indexOf('\n')));
  const lines = body.split('\n');
  let first = lines.length;
  while (first > 0 && /^ {4}at \S/.test(lines[first - 1]!)) first--;
  return lines.slice(first).join('\n');
}

export function safeError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { type: typeof err };
  const pg = pgError(err);
  // Frames only from below the message: a message (a database's, quoting a value) may itself hold lines that look like frames.
  const frames = frameLines(err).split('\n').filter((l) => l.startsWith('    at ')).slice(0, 15);
  return {
    type: err.constructor?.name ?? err.name,
    ...(err instanceof AppError ? { code: err.code, message: err.message } : {}),
    ...(!(err instanceof AppError) && typeof (err as unknown as { code?: unknown }).code === 'string' ? { code: (err as unknown as { code: string }).code } : {}),
    ...(pg ? { pg } : {}),
    stack: frames.join('\n'),
  };
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'carebase' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: safeError, error: safeError },
      ...(tracingEnabled() ? { mixin: traceMixin, mixinMergeStrategy: mergeTrace } : {}),
      // Defence in depth: should a header object ever reach a log call, its secrets are censored.
      redact: {
        paths: ['headers.authorization', 'headers.cookie', 'req.headers.authorization', 'req.headers.cookie', 'authorization', 'token'],
        censor: '[redacted]',
      },
    },
    // Asynchronous stdout: under load, lines written while a write is pending are coalesced into
    // one syscall instead of one each. main.ts flushes before exiting.
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
