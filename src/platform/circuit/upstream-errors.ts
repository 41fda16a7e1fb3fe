// How a circuit judges an upstream's errors, and the error its callers get.
//
// Two questions per error: does it count against the upstream (a failure the breaker counts), and
// is it worth trying again at once (a transient failure the retry repeats)? A timeout, a refused or
// reset connection and a 5xx/408/429 answer are both. A 4xx answer means the upstream is up and
// refused this request: neither (the caller's error goes back to it unchanged). Our own AppErrors
// (raised by the caller's code inside the call) are the caller's business too.
import { AppError } from '../../errors.js';

/**
 * cockatiel's timeout (TaskCancelledError). Not its own isTaskCancelledError: in 3.2.1 that tests
 * the bulkhead's marker property and is always false for a timeout.
 */
export const isTimeout = (err: unknown): boolean => err instanceof Error && 'isTaskCancelledError' in err;

/** An upstream answered with an HTTP error status. Integrations throw it so the circuit can judge it. */
export class UpstreamStatusError extends Error {
  constructor(readonly status: number) {
    super(`upstream answered HTTP ${status}`);
    this.name = 'UpstreamStatusError';
  }
}

/** Why a call through a circuit did not reach (or did not get an answer from) its upstream. */
export type UnavailableReason = 'open' | 'forced-open' | 'failed' | 'closing';

/**
 * 503 UPSTREAM_UNAVAILABLE, in the contract's envelope when a route lets it through. The message
 * names the circuit only (never the upstream's own words, which may quote request data); the
 * original error, when there is one, is `cause`, for logs.
 */
export class UpstreamUnavailable extends AppError {
  constructor(
    readonly circuit: string,
    readonly reason: UnavailableReason,
    message: string,
    options: { retryAfterSeconds?: number; cause?: unknown } = {},
  ) {
    super('UPSTREAM_UNAVAILABLE', message, undefined, options.retryAfterSeconds ? { 'Retry-After': String(options.retryAfterSeconds) } : undefined);
    if (options.cause !== undefined) this.cause = options.cause;
  }
}

/** Socket-level codes (Node and undici) of failures that usually pass: worth another attempt. */
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);

const retryableStatus = (status: number) => status >= 500 || status === 408 || status === 429;

/** The error's code, or its cause's (fetch wraps socket errors: TypeError "fetch failed" → cause.code). */
function codeOf(err: unknown): string | undefined {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 3; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z][A-Z0-9_]{1,40}$/.test(code)) return code;
  }
  return undefined;
}

/** Worth an immediate retry: a timeout, a connection failure, or a 5xx/408/429 answer. */
export function isTransient(err: unknown): boolean {
  if (isTimeout(err)) return true;
  if (err instanceof UpstreamStatusError) return retryableStatus(err.status);
  const code = codeOf(err);
  return code !== undefined && TRANSIENT_CODES.has(code);
}

/** Counts against the upstream: anything but a 4xx answer (other than 408/429) and our own AppErrors. */
export function isUpstreamFailure(err: unknown): boolean {
  if (err instanceof AppError) return false;
  if (err instanceof UpstreamStatusError) return retryableStatus(err.status);
  return true;
}

/**
 * A failure described without the upstream's own words: a status, a socket code, cockatiel's
 * timeout message or just the error's type. Shown to operators (GET /v1/admin/circuits) and logged,
 * so it must never carry request data.
 */
export function failureText(err: unknown, timeoutMs?: number): string {
  if (isTimeout(err)) return timeoutMs ? `timed out after ${timeoutMs} ms` : 'timed out';
  if (err instanceof UpstreamStatusError) return `answered HTTP ${err.status}`;
  const code = codeOf(err);
  const type = err instanceof Error ? err.name : typeof err;
  return code ? `${type} ${code}` : type;
}
