// What both adapters do around a job: the stored envelope (payload + request ID + trace context),
// checking a payload against its schema when enqueued and again when run, the span, the log line
// and the metrics of each attempt. The adapters only move jobs between states.
import { AppError } from '../../errors.js';
import { safeError, type Logger } from '../log.js';
import { inJobSpan, traceCarrier, traceLogFields } from '../tracing/tracing.js';
import { assertValid } from '../validation.js';
import { backoffDelay, type EnqueueOptions, type JobCatalog, type JobPayload, type JobRegistry, type JobRun } from './job-queue.js';

/** What is stored per job. `meta` is ours (request ID, W3C trace context); `payload` is the job's. */
export interface JobEnvelope {
  payload: JobPayload;
  meta: { requestId?: string; traceparent?: string; tracestate?: string };
}

/** A failure that retrying cannot fix (unknown job, payload refused): the job fails at once. */
export class PermanentJobFailure extends Error {
  override name = 'PermanentJobFailure';
}

const JOB_ID = /^[A-Za-z][A-Za-z0-9._-]{0,127}$/;
const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * The envelope of a job about to be enqueued: the payload checked against the catalog (a copy, as
 * JSON: what the in-process runner keeps is exactly what Redis would), the request ID and the
 * active trace context. Throws for an unknown job, a refused payload (VALIDATION_FAILED) or a bad id.
 */
export function envelopeFor(catalog: JobCatalog, name: string, payload: JobPayload, opts: EnqueueOptions = {}): { envelope: JobEnvelope; attempts: number | undefined } {
  const type = catalog[name];
  if (!type) throw new Error(`unknown job "${name}"`);
  if (opts.jobId !== undefined && !JOB_ID.test(opts.jobId)) throw new Error('jobId must be letters, digits, ".", "_" or "-", starting with a letter (at most 128)');
  if (opts.delayMs !== undefined && !(Number.isFinite(opts.delayMs) && opts.delayMs >= 0)) throw new Error('delayMs must be a number ≥ 0');
  const copy = JSON.parse(JSON.stringify(payload)) as JobPayload;
  assertValid(type.payload, copy);
  const meta: JobEnvelope['meta'] = traceCarrier(opts.trace);
  // A request ID that does not look like one is left out rather than stored (it came from a client).
  if (opts.requestId !== undefined && REQUEST_ID.test(opts.requestId)) meta.requestId = opts.requestId;
  return { envelope: { payload: copy, meta }, attempts: type.attempts };
}

export interface Attempt {
  name: string;
  id: string;
  /** 1 on the first run. */
  attempt: number;
  maxAttempts: number;
  /** The stored data, as read back (checked here: it may come from another version of the code). */
  data: unknown;
  /** When the job became due (epoch ms), for the wait time of first attempts. */
  dueAt?: number;
}

export interface RunOptions {
  log: Logger;
  backoffMs: number;
  signal: AbortSignal;
  /** BullMQ or carebase (in-process): the span's messaging.system. */
  system: string;
  observe?: ((run: JobRun) => void) | undefined;
}

/**
 * Runs one attempt of a job: resolves when it completed; rejects when it failed, with a
 * PermanentJobFailure when retrying is pointless, otherwise with an error fit to be stored (type
 * and code only: a database error's message can quote values).
 */
export async function runAttempt(registry: JobRegistry, a: Attempt, o: RunOptions): Promise<void> {
  const started = performance.now();
  const env = parseEnvelope(a.data);
  const requestId = env?.meta.requestId;
  const fields = { job: a.name, jobId: a.id, attempt: a.attempt, ...(requestId ? { reqId: requestId } : {}) };
  const waitMs = a.attempt === 1 && a.dueAt !== undefined ? Math.max(0, Date.now() - a.dueAt) : undefined;
  const attributes = { 'messaging.system': o.system, 'messaging.operation.type': 'process', 'messaging.destination.name': a.name, 'messaging.message.id': a.id, 'carebase.job.attempt': a.attempt };
  await inJobSpan(env?.meta ?? {}, `job ${a.name}`, attributes, async (trace) => {
    // The attempt's log lines carry its trace's ids.
    const log = o.log.child({ ...fields, ...traceLogFields(trace) });
    let failure: unknown;
    try {
      const def = registry[a.name];
      if (!def) throw new PermanentJobFailure(`no handler for job "${a.name}" in this version`);
      if (!env) throw new PermanentJobFailure('the stored job is not a job envelope');
      try {
        assertValid(def.payload, env.payload);
      } catch (err) {
        // The details name the fields (paths and rules), never their values.
        throw new PermanentJobFailure(`payload refused: ${err instanceof AppError ? (err.details ?? []).map((d) => `${d.path} ${d.message}`).join('; ') : 'invalid'}`);
      }
      await def.handle(env.payload as never, { name: a.name, id: a.id, attempt: a.attempt, ...(requestId ? { requestId } : {}), ...(trace ? { trace } : {}), log, signal: o.signal });
    } catch (err) {
      failure = err;
    }
    const durationMs = Number((performance.now() - started).toFixed(1));
    const permanent = failure instanceof PermanentJobFailure;
    const outcome: JobRun['outcome'] = failure === undefined ? 'completed' : !permanent && a.attempt < a.maxAttempts ? 'retrying' : 'failed';
    const line = { attempts: a.maxAttempts, durationMs, outcome };
    if (outcome === 'completed') log.info(line, 'job completed');
    else if (outcome === 'retrying') log.warn({ ...line, err: failure, retryInMs: backoffDelay(o.backoffMs, a.attempt) }, 'job failed; will retry');
    else log.error({ ...line, err: failure }, permanent ? `job failed without retry: ${(failure as Error).message}` : 'job failed; no attempts left');
    try {
      o.observe?.({ name: a.name, outcome, durationMs, ...(waitMs !== undefined ? { waitMs } : {}) });
    } catch {
      // Metrics never fail a job.
    }
    if (failure === undefined) return;
    throw permanent ? failure : storable(failure);
  });
}

function parseEnvelope(data: unknown): JobEnvelope | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const { payload, meta } = data as { payload?: unknown; meta?: unknown };
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return undefined;
  const m: JobEnvelope['meta'] = {};
  if (typeof meta === 'object' && meta !== null) {
    for (const k of ['requestId', 'traceparent', 'tracestate'] as const) {
      const v = (meta as Record<string, unknown>)[k];
      if (typeof v === 'string') m[k] = v;
    }
    if (m.requestId !== undefined && !REQUEST_ID.test(m.requestId)) delete m.requestId;
  }
  return { payload: payload as JobPayload, meta: m };
}

/**
 * The error as a queue may store it (BullMQ keeps failedReason and the stack in Redis and shows
 * them in every tool): our own messages (PHI-free by rule), otherwise the type and code only,
 * with the stack frames.
 */
function storable(err: unknown): Error {
  const s = safeError(err);
  const message = typeof s.message === 'string' ? `${s.code}: ${s.message}` : `${String(s.type)}${s.code ? ` (${String(s.code)})` : ''}`;
  const e = new Error(message);
  e.name = 'JobFailure';
  e.stack = `JobFailure: ${message}\n${String(s.stack ?? '')}`;
  return e;
}
