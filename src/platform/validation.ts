// One JSON-schema validator configuration for every transport and for the service layer, so a
// rule checked at the HTTP edge is checked the same way anywhere else (merge-patch results, jobs).
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { validationFailed, type ErrorDetail } from '../errors.js';

const TIME_ZONES = new Set([...Intl.supportedValuesOf('timeZone'), 'UTC', 'Etc/UTC']);
// Intl lists CLDR's canonical ids, which keep names IANA has since replaced (Asia/Calcutta, not
// Asia/Kolkata; America/Buenos_Aires, not America/Argentina/Buenos_Aires). Names the runtime
// resolves are valid too, but ICU matches case-insensitively, so each word must be spelled as in
// the listed names (or, for a word none of them has, be capitalized).
const ZONE_WORDS = new Map<string, Set<string>>();
for (const z of TIME_ZONES) for (const w of z.split(/[/_-]/)) ZONE_WORDS.set(w.toLowerCase(), (ZONE_WORDS.get(w.toLowerCase()) ?? new Set()).add(w));
const inCanonicalCase = (v: string) => v.split(/[/_-]/).every((w) => ZONE_WORDS.get(w.toLowerCase())?.has(w) ?? /^[A-Z][a-z]+$/.test(w));
const resolves = (v: string) => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: v });
    return true;
  } catch {
    return false;
  }
};
/** An IANA time zone name as the runtime's tz database knows it, in canonical case. */
export const isTimeZone = (v: string) => TIME_ZONES.has(v) || (v.length <= 64 && inCanonicalCase(v) && resolves(v));

function build(coerce: boolean): Ajv {
  const ajv = new Ajv({
    allErrors: true, // `details` lists every problem, not the first
    strict: false,
    removeAdditional: false,
    useDefaults: true,
    coerceTypes: coerce ? 'array' : false,
  });
  addFormats.default(ajv);
  // ajv-formats' uuid also admits a `urn:uuid:` prefix, which PostgreSQL's uuid type rejects (a 500).
  ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
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
