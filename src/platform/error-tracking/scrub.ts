// What an error report may carry, as an allow-list: beforeSend hands every event Sentry built to
// scrubEvent, which returns a new event made only of the fields below, each checked against the
// shape it must have. Anything else Sentry (or a future integration, or a scope someone filled)
// put in — request data, headers, cookies, user, IP address, extra, breadcrumbs, local variables,
// source context, the exception messages — is not copied.
//
// Messages: only our own AppError messages are kept (written PHI-free, sent to clients anyway);
// database, driver and parser messages can quote input values (drizzle's holds the query's
// parameters), so for those only the type and the error's code are kept — safeError's rule for
// logs (src/platform/log.ts), applied to the error and to each of its causes.
// Stack frames are parsed from the stack *below* the message: V8 writes the message first, and a
// message with line breaks could otherwise pass off input values as frames.
import type { ErrorEvent, EventHint, Exception, StackFrame } from '@sentry/node-core/light';
import { ROLES } from '../../auth/principal.js';
import { ERRORS } from '../../errors.js';
import { frameLines, safeError } from '../log.js';

export type StackParser = (stack: string, skipFirstLines?: number, framesToPop?: number) => StackFrame[];

/** The exception's own value when its message may not be sent. */
export const WITHHELD = '[message withheld: it may contain PHI]';

const MAX_CAUSES = 5;
const NAME = /^[A-Za-z_$][\w$]{0,99}$/;
const CODE = /^[A-Za-z0-9_.-]{1,64}$/;
const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;

/** Tag → the shape its value must have; tags not listed are dropped. */
const TAGS: Record<string, (v: string) => boolean> = {
  method: (v) => /^[A-Z]{3,10}$/.test(v),
  route: (v) => v === '(unmatched)' || /^\/[A-Za-z0-9_\-/:.*]{0,199}$/.test(v),
  status_code: (v) => /^[1-5]\d\d$/.test(v),
  error_code: (v) => Object.hasOwn(ERRORS, v),
  // The client may choose its request id (the contract accepts ^[A-Za-z0-9._-]{1,128}$); it is in
  // every log line and audit record of the request already.
  request_id: (v) => /^[A-Za-z0-9._-]{1,128}$/.test(v),
  tenant: (v) => /^[a-z0-9][a-z0-9-]{0,62}$/.test(v),
  roles: (v) => v.split(',').every((r) => (ROLES as readonly string[]).includes(r)),
  origin: (v) => v === 'uncaughtException' || v === 'unhandledRejection',
  trace_id: (v) => HEX32.test(v),
};

const LEVELS = new Set(['fatal', 'error']);

const str = (v: unknown, max: number): string | undefined => (typeof v === 'string' && v.length > 0 && v.length <= max ? v : undefined);
const int = (v: unknown): number | undefined => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined);

/** The new event, or null (nothing is sent) when the event is not an error report we recognise. */
export function scrubEvent(event: ErrorEvent, hint: EventHint, parse: StackParser): ErrorEvent | null {
  try {
    return build(event, hint, parse);
  } catch {
    // A throwing beforeSend makes Sentry report the throw itself, bypassing beforeSend: never throw.
    return null;
  }
}

function build(event: ErrorEvent, hint: EventHint, parse: StackParser): ErrorEvent | null {
  if (event.type !== undefined || !('originalException' in hint)) return null;
  const tags = allowedTags(event.tags);
  const last = event.exception?.values?.at(-1)?.mechanism;
  const mechanism = { type: str(last?.type, 64) ?? 'generic', handled: last?.handled !== false };
  const values = exceptionsOf(hint.originalException, mechanism, parse);
  // Facts about the error's (database) cause, from safeError: codes and schema names, never values.
  const safe = safeError(hint.originalException);
  const pg = safe.pg as { code?: unknown; table?: unknown; constraint?: unknown; column?: unknown } | undefined;
  const facts: Record<string, unknown> = { 'db.sqlstate': pg?.code, 'db.table': pg?.table, 'db.constraint': pg?.constraint, 'db.column': pg?.column };
  if (safe.message === undefined) facts['error.cause_code'] = safe.code; // an AppError's code is error_code
  for (const [k, v] of Object.entries(facts)) if (typeof v === 'string' && CODE.test(v)) tags[k] = v;

  const trace = (event.contexts?.otel ?? event.contexts?.trace) as { trace_id?: unknown; span_id?: unknown } | undefined;
  const runtime = event.contexts?.runtime as { name?: unknown; version?: unknown } | undefined;
  const out: ErrorEvent = {
    type: undefined,
    event_id: str(event.event_id, 32),
    timestamp: typeof event.timestamp === 'number' ? event.timestamp : Date.now() / 1000,
    platform: 'node',
    level: LEVELS.has(String(event.level)) ? event.level : 'error',
    ...(str(event.server_name, 255) ? { server_name: event.server_name } : {}),
    ...(str(event.release, 200) ? { release: event.release } : {}),
    ...(str(event.environment, 64) ? { environment: event.environment } : {}),
    ...(tags.method && tags.route ? { transaction: `${tags.method} ${tags.route}` } : {}),
    tags,
    contexts: {
      ...(runtime && str(runtime.name, 32) && str(runtime.version, 32) ? { runtime: { name: runtime.name as string, version: runtime.version as string } } : {}),
      ...(trace && typeof trace.trace_id === 'string' && HEX32.test(trace.trace_id) && typeof trace.span_id === 'string' && HEX16.test(trace.span_id)
        ? { trace: { trace_id: trace.trace_id, span_id: trace.span_id } }
        : {}),
    },
    exception: { values },
  };
  return out;
}

function allowedTags(tags: ErrorEvent['tags']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(tags ?? {})) {
    if (typeof v === 'string' && v.length <= 200 && Object.hasOwn(TAGS, k) && TAGS[k]!(v)) out[k] = v;
  }
  return out;
}

/** The error and its causes, innermost first (Sentry's order), linked as Sentry links chained errors. */
function exceptionsOf(err: unknown, mechanism: { type: string; handled: boolean }, parse: StackParser): Exception[] {
  const chain: unknown[] = [err];
  for (let e = err; chain.length < MAX_CAUSES + 1 && e instanceof Error && e.cause !== undefined && !chain.includes(e.cause); ) {
    e = e.cause;
    chain.push(e);
  }
  return chain
    .map((e, i): Exception => {
      const own: Exception = describe(e, parse);
      own.mechanism =
        i === 0
          ? { ...mechanism, ...(chain.length > 1 ? { exception_id: 0 } : {}) }
          : { type: 'chained', source: 'cause', handled: true, exception_id: i, parent_id: i - 1 };
      return own;
    })
    .reverse();
}

function describe(e: unknown, parse: StackParser): Exception {
  if (!(e instanceof Error)) return { type: 'NonError', value: `a value of type ${e === null ? 'null' : typeof e} was thrown (withheld)` };
  const safe = safeError(e);
  const type = typeof safe.type === 'string' && NAME.test(safe.type) ? safe.type : 'Error';
  const code = typeof safe.code === 'string' && CODE.test(safe.code) ? safe.code : undefined;
  const value = typeof safe.message === 'string' ? safe.message : code ? `${WITHHELD} (code ${code})` : WITHHELD;
  const frames = parse(frameLines(e)).map(frame).filter((f): f is StackFrame => f !== undefined);
  return { type, value, ...(frames.length > 0 ? { stacktrace: { frames } } : {}) };
}

function frame(f: StackFrame): StackFrame | undefined {
  const out: StackFrame = {};
  if (str(f.filename, 500)) out.filename = f.filename!;
  if (str(f.abs_path, 500)) out.abs_path = f.abs_path!;
  if (str(f.module, 300)) out.module = f.module!;
  if (str(f.function, 300)) out.function = f.function!;
  if (int(f.lineno) !== undefined) out.lineno = f.lineno!;
  if (int(f.colno) !== undefined) out.colno = f.colno!;
  if (typeof f.in_app === 'boolean') out.in_app = f.in_app;
  return out.filename || out.function ? out : undefined;
}
