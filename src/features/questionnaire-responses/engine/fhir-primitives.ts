// FHIR R4 primitive-type rules (https://hl7.org/fhir/R4/datatypes.html), as the regular
// expressions the specification publishes plus the checks a regex cannot make (real calendar
// days, 32-bit integers). The validator and the FHIR serializer share them, so what we accept
// is exactly what we can later emit as a valid resource.

// The spec's regexes, anchored. Years 0001-9999; month and day optional (partial dates are
// legal FHIR); a time part needs seconds and a zone.
const YEAR = '([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)';
const DATE_RE = new RegExp(`^${YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?$`);
const DATETIME_RE = new RegExp(
  `^${YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])` +
    '(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]+)?(Z|(\\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$',
);
const TIME_RE = /^([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?$/;
// code: no leading/trailing whitespace, and internal whitespace only as single spaces. So
// "More than half the days" is a valid code, " LA6569-3" and "a  b" are not.
const CODE_RE = /^[^\s]+( [^\s]+)*$/;
const ID_RE = /^[A-Za-z0-9\-.]{1,64}$/;
// uri/canonical: any string without whitespace (FHIR's regex is \S*, and empty is not a value).
const URI_RE = /^\S+$/;
// Characters below U+0020 other than tab, LF and CR are not allowed in FHIR strings (XML 1.0
// cannot carry them and the spec says they SHOULD NOT appear). We reject them: they are never a
// legitimate answer and they break downstream FHIR/XML consumers.
const CONTROL_RE = /[\u0000-\u0008\u000B\u000C\u000E-\u001F]/;

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** The calendar check the regex cannot do (2023-02-30 matches the pattern but is no date). */
function realDay(value: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(value);
  if (!m) return true; // year or year-month only: nothing more to check
  return Number(m[3]) <= daysInMonth(Number(m[1]), Number(m[2]));
}

export const isFhirDate = (v: unknown): v is string => typeof v === 'string' && DATE_RE.test(v) && realDay(v);
export const isFhirDateTime = (v: unknown): v is string =>
  typeof v === 'string' && DATETIME_RE.test(v) && realDay(v);
export const isFhirTime = (v: unknown): v is string => typeof v === 'string' && TIME_RE.test(v);
export const isFhirCode = (v: unknown): v is string => typeof v === 'string' && CODE_RE.test(v);
export const isFhirId = (v: unknown): v is string => typeof v === 'string' && ID_RE.test(v);
export const isFhirUri = (v: unknown): v is string => typeof v === 'string' && URI_RE.test(v);
/** FHIR `string`: non-empty (JSON cannot carry an empty primitive) and free of control characters. */
export const isFhirString = (v: unknown): v is string =>
  typeof v === 'string' && v.length > 0 && !CONTROL_RE.test(v);
/** FHIR `integer` is a signed 32-bit number. */
export const isFhirInteger = (v: unknown): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= -2147483648 && v <= 2147483647;
export const isFhirDecimal = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Length in characters (code points), which is how FHIR's maxLength counts. */
export const charLength = (s: string): number => [...s].length;

/**
 * Orders two FHIR date/dateTime/time values for enableWhen comparisons. Returns undefined when the
 * order is unknowable: different precisions that agree on their common part (is "2020" before
 * "2020-05"?) — FHIRPath also answers "empty" there, and an unknown comparison enables nothing.
 */
export function compareTemporal(a: string, b: string): number | undefined {
  if (TIME_RE.test(a) && TIME_RE.test(b)) return cmp(padTime(a), padTime(b));
  const aHasTime = a.includes('T');
  const bHasTime = b.includes('T');
  if (aHasTime && bHasTime) return cmp(Date.parse(a), Date.parse(b));
  // Compare on the shared calendar precision (year, month or day).
  const da = a.slice(0, 10);
  const db = b.slice(0, 10);
  const common = Math.min(da.length, db.length);
  const c = cmp(da.slice(0, common), db.slice(0, common));
  if (c !== 0) return c;
  return da.length === db.length && !aHasTime && !bHasTime ? 0 : undefined;
}

function padTime(t: string): string {
  const [hms, frac = ''] = t.split('.');
  return `${hms}.${frac.padEnd(9, '0')}`;
}

function cmp(a: string | number, b: string | number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
