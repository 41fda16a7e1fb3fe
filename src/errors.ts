// The one error vocabulary. Every error any transport returns comes from this table;
// errors.test.ts fails when a code here is missing from CONTRACT.md/docs or documented but absent.

export const ERRORS = {
  MALFORMED_REQUEST: { status: 400, message: 'The request could not be parsed' },
  VALIDATION_FAILED: { status: 400, message: 'The request failed validation' },
  UNAUTHENTICATED: { status: 401, message: 'Authentication is required' },
  FORBIDDEN: { status: 403, message: 'You are not allowed to do this' },
  NOT_FOUND: { status: 404, message: 'Not found' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'Method not allowed on this resource' },
  CONFLICT: { status: 409, message: 'The request conflicts with the current state' },
  RESPONSE_SUBMITTED: { status: 409, message: 'A submitted questionnaire response cannot be changed' },
  INVALID_TRANSITION: { status: 409, message: 'This state change is not allowed' },
  VERSION_CONFLICT: { status: 412, message: 'The resource was changed by someone else; re-read it and retry' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'The request body is too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Unsupported content type' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, message: 'This Idempotency-Key was used with a different request' },
  PRECONDITION_REQUIRED: { status: 428, message: 'This request requires an If-Match header' },
  RATE_LIMITED: { status: 429, message: 'Too many requests' },
  INTERNAL: { status: 500, message: 'An unexpected error occurred' },
  UPSTREAM_UNAVAILABLE: { status: 503, message: 'An external system is unavailable' },
  SERVICE_UNAVAILABLE: { status: 503, message: 'The service is temporarily unavailable' },
  TIMEOUT: { status: 504, message: 'The operation timed out' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export interface ErrorDetail {
  path: string;
  message: string;
}

/**
 * An error meant for the client. `message` must never contain PHI, SQL or stack traces:
 * it is sent to the client and written to logs.
 */
export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly details?: ErrorDetail[],
    readonly headers?: Record<string, string>,
  ) {
    super(message ?? ERRORS[code].message);
    this.name = 'AppError';
    this.status = ERRORS[code].status;
  }
}

export const notFound = (what = 'Resource') => new AppError('NOT_FOUND', `${what} not found`);

/**
 * A resource outside the principal's scope (another patient's record): 404 to the caller, who must
 * not learn that it exists, and a denied access in the audit trail.
 */
export class OutOfScope extends AppError {
  constructor(what: string) {
    super('NOT_FOUND', `${what} not found`);
  }
}
export const validationFailed = (details: ErrorDetail[], message?: string) =>
  new AppError('VALIDATION_FAILED', message, details);

export interface ErrorEnvelope {
  success: false;
  error: { code: ErrorCode; message: string; details?: ErrorDetail[]; requestId: string };
  timestamp: string;
}

export function envelope(err: AppError, requestId: string, now = new Date()): ErrorEnvelope {
  return {
    success: false,
    error: {
      code: err.code,
      message: err.message,
      ...(err.details && err.details.length > 0 ? { details: err.details } : {}),
      requestId,
    },
    timestamp: now.toISOString(),
  };
}
