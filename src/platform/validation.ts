// One JSON-schema validator configuration for every transport and for the service layer, so a
// rule checked at the HTTP edge is checked the same way anywhere else (merge-patch results, jobs).
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { validationFailed, type ErrorDetail } from '../errors.js';

const TIME_ZONES = new Set([...Intl.supportedValuesOf('timeZone'), 'UTC', 'Etc/UTC']);
/** An IANA time zone name as the runtime's tz database knows it, in canonical case. */
export const isTimeZone = (v: string) => TIME_ZONES.has(v);

function build(coerce: boolean): Ajv {
  const ajv = new Ajv({
    allErrors: true, // `details` lists every problem, not the first
    strict: false,
    removeAdditional: false,
    useDefaults: true,
    coerceTypes: coerce ? 'array' : false,
  });
  addFormats.default(ajv);
  ajv.addFormat('iana-time-zone', { type: 'string', validate: isTimeZone });
  return ajv;
}

/** Bodies and service inputs: no type coercion (a string "1990" is not a number). */
export const strictAjv = build(false);
/** Query strings, path parameters and headers arrive as strings: coerce them. */
export const coercingAjv = build(true);

export function formatErrors(errors: ErrorObject[] | null | undefined, prefix = ''): ErrorDetail[] {
  const out: ErrorDetail[] = [];
  const seen = new Set<string>();
  for (const e of errors ?? []) {
    let path = `${prefix}${e.instancePath}`;
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'required') {
      path = `${path}/${(e.params as { missingProperty: string }).missingProperty}`;
      message = 'is required';
    } else if (e.keyword === 'additionalProperties') {
      path = `${path}/${(e.params as { additionalProperty: string }).additionalProperty}`;
      message = 'is not an allowed property';
    } else if (e.keyword === 'format') {
      message = `must be a valid ${(e.params as { format: string }).format}`;
    } else if (e.keyword === 'pattern') {
      message = 'has an invalid format or contains characters that are not allowed';
    }
    const key = `${path}\u0000${message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push({ path: path || '/', message });
    }
  }
  return out;
}

const compiled = new WeakMap<object, ValidateFunction>();

/** Validates a value inside the service layer; throws VALIDATION_FAILED listing every problem. */
export function assertValid<T>(schema: object, value: unknown): asserts value is T {
  let fn = compiled.get(schema);
  if (!fn) {
    fn = strictAjv.compile(schema);
    compiled.set(schema, fn);
  }
  if (!fn(value)) throw validationFailed(formatErrors(fn.errors));
}
