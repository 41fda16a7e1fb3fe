// Serializes a stored response as a FHIR R4 QuestionnaireResponse that a FHIR validator accepts.
//
// Only FHIR elements are emitted, rebuilt from a whitelist rather than copied: linkId, definition,
// text, answer (exactly one value[x]) and nested item; Coding/Quantity/Reference/Attachment with
// their own FHIR fields. Empty arrays/strings are left out (FHIR JSON forbids them). Extensions
// the client sent on items and answers are dropped: the engine neither validates nor interprets
// them, and ordinalValue/itemWeight ones would let downstream FHIRPath weight() read the client's
// weights instead of the questionnaire's. The server's score goes in as:
// * the answer of the questionnaire's total item, if the caller applied withServerScore first;
// * the SCORE_EXTENSION_URL extension (total, band), which carries the band too.
// Invalid metadata (id, patient id, authored, questionnaire) is a programming error and throws.

import type { Extension, ResponseAnswer, ResponseItem } from '../../questionnaires/fhir-types.js';
import { isObject, VALUE_KEYS } from './answers.js';
import {
  isFhirCode, isFhirDate, isFhirDateTime, isFhirDecimal, isFhirId, isFhirInteger, isFhirString, isFhirTime, isFhirUri,
} from './fhir-primitives.js';

/**
 * Carebase's extension for the server-computed score: `total` (valueDecimal) and, for known
 * instruments, `band` (valueString). The host is under the reserved `.example` TLD until the
 * project publishes a canonical base for its profiles; change it in one place here.
 */
export const SCORE_EXTENSION_URL = 'https://carebase.example/fhir/StructureDefinition/questionnaireresponse-score';

export type FhirResponseStatus = 'in-progress' | 'completed' | 'amended';

export interface ToFhirInput {
  /** FHIR id (our UUIDv7 fits `[A-Za-z0-9\-.]{1,64}`). */
  id: string;
  /** The Questionnaire's canonical URL (optionally `|version`) or a reference like `Questionnaire/<id>`. */
  questionnaire: string;
  status: FhirResponseStatus;
  patientId: string;
  /** A Date, or a FHIR dateTime string (an instant with time zone, or a partial date). */
  authored: string | Date;
  items: ResponseItem[];
  score?: { total: number; band: string | null } | null;
}

export interface FhirQuestionnaireResponse {
  resourceType: 'QuestionnaireResponse';
  id: string;
  extension?: Extension[];
  questionnaire: string;
  status: FhirResponseStatus;
  subject: { reference: string };
  authored: string;
  item?: ResponseItem[];
}

const STATUSES: ReadonlySet<string> = new Set(['in-progress', 'completed', 'amended']);

export function toFhirQuestionnaireResponse(input: ToFhirInput): FhirQuestionnaireResponse {
  const fail = (problem: string) => {
    throw new TypeError(`toFhirQuestionnaireResponse: ${problem}`);
  };
  if (!isFhirId(input.id)) fail('id is not a FHIR id');
  if (!isFhirId(input.patientId)) fail('patientId is not a FHIR id');
  if (!isFhirUri(input.questionnaire)) fail('questionnaire must be a canonical URL or reference');
  if (!STATUSES.has(input.status)) fail('status must be in-progress, completed or amended');
  const authored = input.authored instanceof Date ? input.authored.toISOString() : input.authored;
  if (!isFhirDateTime(authored)) fail('authored is not a FHIR dateTime');
  const items = serializeItems(input.items);
  const score = input.score && isFhirDecimal(input.score.total) ? input.score : null;
  return {
    resourceType: 'QuestionnaireResponse',
    id: input.id,
    ...(score ? { extension: [scoreExtension(score.total, score.band)] } : {}),
    questionnaire: input.questionnaire,
    status: input.status,
    subject: { reference: `Patient/${input.patientId}` },
    authored,
    ...(items ? { item: items } : {}),
  };
}

function scoreExtension(total: number, band: string | null): Extension {
  return {
    url: SCORE_EXTENSION_URL,
    extension: [
      { url: 'total', valueDecimal: total },
      ...(band && isFhirString(band) ? [{ url: 'band', valueString: band }] : []),
    ],
  };
}

function serializeItems(items: unknown): ResponseItem[] | undefined {
  if (!Array.isArray(items)) return undefined;
  const out = items.filter(isObject).filter((it) => isFhirString(it.linkId)).map((it) => {
    const item: ResponseItem = { linkId: it.linkId as string };
    if (isFhirUri(it.definition)) item.definition = it.definition;
    if (isFhirString(it.text)) item.text = it.text;
    const answers = serializeAnswers(it.answer);
    if (answers) item.answer = answers;
    const children = serializeItems(it.item);
    // qrs-1: an item has nested items or answers, never both (children then live under answers).
    if (children && !answers) item.item = children;
    return item;
  });
  return out.length > 0 ? out : undefined;
}

function serializeAnswers(answers: unknown): ResponseAnswer[] | undefined {
  if (!Array.isArray(answers)) return undefined;
  const out: ResponseAnswer[] = [];
  for (const a of answers.filter(isObject)) {
    const key = VALUE_KEYS.find((k) => a[k] !== undefined);
    const value = key ? serializeValue(key, a[key]) : undefined;
    const children = serializeItems(a.item);
    if (value === undefined && !children) continue;
    out.push({ ...(key && value !== undefined ? { [key]: value } : {}), ...(children ? { item: children } : {}) });
  }
  return out.length > 0 ? out : undefined;
}

/** Copies the named fields that pass their FHIR check; undefined if none does. */
function pick(v: unknown, fields: Record<string, (x: unknown) => boolean>): Record<string, unknown> | undefined {
  if (!isObject(v)) return undefined;
  const out: Record<string, unknown> = {};
  for (const [name, ok] of Object.entries(fields)) if (v[name] !== undefined && ok(v[name])) out[name] = v[name];
  return Object.keys(out).length > 0 ? out : undefined;
}

const isBool = (x: unknown) => typeof x === 'boolean';
const isComparator = (x: unknown) => typeof x === 'string' && ['<', '<=', '>=', '>'].includes(x);
const isUnsignedInt = (x: unknown) => isFhirInteger(x) && x >= 0;

function serializeValue(key: (typeof VALUE_KEYS)[number], v: unknown): unknown {
  switch (key) {
    case 'valueBoolean': return isBool(v) ? v : undefined;
    case 'valueDecimal': return isFhirDecimal(v) ? v : undefined;
    case 'valueInteger': return isFhirInteger(v) ? v : undefined;
    case 'valueDate': return isFhirDate(v) ? v : undefined;
    case 'valueDateTime': return isFhirDateTime(v) ? v : undefined;
    case 'valueTime': return isFhirTime(v) ? v : undefined;
    case 'valueString': return isFhirString(v) ? v : undefined;
    case 'valueUri': return isFhirUri(v) ? v : undefined;
    case 'valueCoding':
      return pick(v, { system: isFhirUri, version: isFhirString, code: isFhirCode, display: isFhirString, userSelected: isBool });
    case 'valueQuantity':
      return pick(v, { value: isFhirDecimal, comparator: isComparator, unit: isFhirString, system: isFhirUri, code: isFhirCode });
    case 'valueReference':
      return pick(v, { reference: isFhirString, type: isFhirUri, display: isFhirString });
    case 'valueAttachment':
      return pick(v, {
        contentType: isFhirCode, language: isFhirCode, data: isFhirString, url: isFhirUri, size: isUnsignedInt,
        hash: isFhirString, title: isFhirString, creation: isFhirDateTime,
      });
  }
}
