// One answer against its Questionnaire item: is value[x] the right type for the item, a valid
// FHIR value, within maxLength, and one of the allowed options? Pure and per-answer, so draft and
// submit validation share it (draft saves may be incomplete, never wrong).
//
// Messages name linkIds, types and limits but never repeat an answer value: answers are PHI and
// error details end up in responses and logs.

import type { ErrorDetail } from '../../../errors.js';
import type { AnswerOption, Coding, Questionnaire, QuestionnaireItem } from '../../questionnaires/fhir-types.js';
import {
  charLength, isFhirCode, isFhirDate, isFhirDateTime, isFhirDecimal, isFhirInteger, isFhirString,
  isFhirTime, isFhirUri,
} from './fhir-primitives.js';
import { codingMatches, findConcept, resolveValueSet, valueSetCodes } from './terminology.js';

export const VALUE_KEYS = [
  'valueBoolean', 'valueDecimal', 'valueInteger', 'valueDate', 'valueDateTime', 'valueTime',
  'valueString', 'valueUri', 'valueAttachment', 'valueCoding', 'valueQuantity', 'valueReference',
] as const;
export type ValueKey = (typeof VALUE_KEYS)[number];

export interface AnswerValue {
  key: ValueKey;
  value: unknown;
}

const COMPLEX_VALUE_KEYS = ['valueAttachment', 'valueCoding', 'valueQuantity', 'valueReference'];
const PRIMITIVE_VALUE_KEYS = VALUE_KEYS.filter((k) => !COMPLEX_VALUE_KEYS.includes(k));
const ANSWER_KEYS = new Set<string>([...VALUE_KEYS, 'id', 'extension', 'item', ...PRIMITIVE_VALUE_KEYS.map((k) => `_${k}`)]);
const CODING_KEYS = new Set(['id', 'extension', 'system', 'version', 'code', 'display', 'userSelected',
  '_system', '_version', '_code', '_display', '_userSelected']);
const QUANTITY_KEYS = new Set(['id', 'extension', 'value', 'comparator', 'unit', 'system', 'code',
  '_value', '_comparator', '_unit', '_system', '_code']);
const CHOICE_KEYS: ValueKey[] = ['valueCoding', 'valueString', 'valueInteger', 'valueDate', 'valueTime', 'valueReference'];

/** Which value[x] each item type takes (R4 Questionnaire.item.type). */
const EXPECTED: Record<string, ValueKey[]> = {
  boolean: ['valueBoolean'], decimal: ['valueDecimal'], integer: ['valueInteger'], date: ['valueDate'],
  dateTime: ['valueDateTime'], time: ['valueTime'], string: ['valueString'], text: ['valueString'],
  url: ['valueUri'], attachment: ['valueAttachment'], reference: ['valueReference'],
  quantity: ['valueQuantity'], choice: CHOICE_KEYS, 'open-choice': CHOICE_KEYS,
};
const UNIT_OPTION_URL = 'http://hl7.org/fhir/StructureDefinition/questionnaire-unitOption';

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** A client-supplied string, quoted and cut short, safe to put in a message. */
export const quote = (s: string): string => JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);

/** Unknown properties are errors: a FHIR parser rejects them, and we would not store them. */
export function checkProperties(
  obj: Record<string, unknown>, allowed: ReadonlySet<string>, path: string, errors: ErrorDetail[],
): void {
  for (const key of Object.keys(obj)) {
    if (key === 'modifierExtension') {
      // A modifier extension may change the meaning of the answer; FHIR forbids processing data
      // whose modifier extensions are not understood, and we understand none.
      errors.push({ path: `${path}/modifierExtension`, message: 'Modifier extensions are not supported' });
    } else if (!allowed.has(key)) {
      errors.push({ path: `${path}/${escapePointer(key)}`, message: `Unknown property ${quote(key)}` });
    } else if (key === 'extension' || key.startsWith('_')) {
      // `_valueString` etc. hold a primitive's id/extensions: only their extension list matters.
      const ext = key === 'extension' ? obj[key] : (obj[key] as { extension?: unknown } | null)?.extension;
      checkExtensions(ext, `${path}/${escapePointer(key)}`, errors);
    }
  }
}

function checkExtensions(ext: unknown, path: string, errors: ErrorDetail[]): void {
  if (ext === undefined) return;
  if (!Array.isArray(ext) || !ext.every((e) => isObject(e) && isFhirUri(e.url))) {
    errors.push({ path, message: 'extension must be an array of objects, each with a url' });
  }
}

/** RFC 6901: "~" and "/" inside a key are escaped as "~0" and "~1". */
export const escapePointer = (key: string): string => key.replace(/~/g, '~0').replace(/\//g, '~1');

/** The value[x] an answer carries (the first, if it wrongly carries several). */
export function answerValueOf(answer: unknown): AnswerValue | undefined {
  if (!isObject(answer)) return undefined;
  const key = VALUE_KEYS.find((k) => answer[k] !== undefined);
  return key ? { key, value: answer[key] } : undefined;
}

/** The answerOption an answer value denotes, matched by kind (coding, string, integer, …). */
export function matchOption(q: Questionnaire, item: QuestionnaireItem, av: AnswerValue): AnswerOption | undefined {
  if (!Array.isArray(item.answerOption)) return undefined;
  return item.answerOption.find((o) => isObject(o) && optionMatches(q, o, av));
}

function optionMatches(q: Questionnaire, o: AnswerOption, { key, value }: AnswerValue): boolean {
  switch (key) {
    case 'valueCoding':
      return isObject(o.valueCoding) && isObject(value) && codingMatches(q, o.valueCoding, value as Coding);
    case 'valueReference':
      return isObject(o.valueReference) && isObject(value) &&
        typeof value.reference === 'string' && o.valueReference.reference === value.reference;
    case 'valueString': case 'valueInteger': case 'valueDate': case 'valueTime':
      return o[key] !== undefined && o[key] === value;
    default:
      return false;
  }
}

/** Reports, and returns true, when the value is not a well-formed FHIR value of its own type. */
function valueProblem(av: AnswerValue, path: string, errors: ErrorDetail[]): boolean {
  const at = `${path}/${av.key}`;
  const bad = (message: string) => (errors.push({ path: at, message }), true);
  const v = av.value;
  switch (av.key) {
    case 'valueBoolean': return typeof v !== 'boolean' && bad('valueBoolean must be true or false');
    case 'valueDecimal': return !isFhirDecimal(v) && bad('valueDecimal must be a finite number');
    case 'valueInteger': return !isFhirInteger(v) && bad('valueInteger must be a whole number (32-bit)');
    case 'valueDate': return !isFhirDate(v) && bad('valueDate must be a FHIR date: YYYY, YYYY-MM or YYYY-MM-DD');
    case 'valueDateTime':
      return !isFhirDateTime(v) &&
        bad('valueDateTime must be a FHIR dateTime: YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss with a time zone');
    case 'valueTime': return !isFhirTime(v) && bad('valueTime must be a FHIR time: hh:mm:ss');
    case 'valueString': return !isFhirString(v) && bad('valueString must be a non-empty string without control characters');
    case 'valueUri': return !isFhirUri(v) && bad('valueUri must be a non-empty string without whitespace');
    case 'valueAttachment':
      return (!isObject(v) || Object.keys(v).length === 0) && bad('valueAttachment must be an Attachment object');
    case 'valueReference':
      return (!isObject(v) || !(typeof v.reference === 'string' || isObject(v.identifier) || typeof v.display === 'string')) &&
        bad('valueReference must be a Reference with reference, identifier or display');
    case 'valueCoding': return codingProblem(v, at, errors);
    case 'valueQuantity': return quantityProblem(v, at, errors);
  }
}

function codingProblem(v: unknown, at: string, errors: ErrorDetail[]): boolean {
  if (!isObject(v)) return (errors.push({ path: at, message: 'valueCoding must be a Coding object' }), true);
  const before = errors.length;
  checkProperties(v, CODING_KEYS, at, errors);
  if (v.system !== undefined && !isFhirUri(v.system)) {
    errors.push({ path: `${at}/system`, message: 'system must be a URI without whitespace' });
  }
  if (v.code !== undefined && !isFhirCode(v.code)) {
    errors.push({ path: `${at}/code`, message: 'code must be a FHIR code: no leading, trailing or repeated whitespace' });
  }
  if (v.display !== undefined && !isFhirString(v.display)) {
    errors.push({ path: `${at}/display`, message: 'display must be a non-empty string' });
  }
  if (v.code === undefined && v.display === undefined) errors.push({ path: at, message: 'A Coding needs a code' });
  return errors.length > before;
}

function quantityProblem(v: unknown, at: string, errors: ErrorDetail[]): boolean {
  if (!isObject(v)) return (errors.push({ path: at, message: 'valueQuantity must be a Quantity object' }), true);
  const before = errors.length;
  checkProperties(v, QUANTITY_KEYS, at, errors);
  if (!isFhirDecimal(v.value)) errors.push({ path: `${at}/value`, message: 'A quantity answer needs a numeric value' });
  if (v.comparator !== undefined && !['<', '<=', '>=', '>'].includes(v.comparator as string)) {
    errors.push({ path: `${at}/comparator`, message: 'comparator must be one of <, <=, >=, >' });
  }
  if (v.unit !== undefined && !isFhirString(v.unit)) errors.push({ path: `${at}/unit`, message: 'unit must be a non-empty string' });
  if (v.system !== undefined && !isFhirUri(v.system)) {
    errors.push({ path: `${at}/system`, message: 'system must be a URI without whitespace' });
  }
  if (v.code !== undefined && !isFhirCode(v.code)) errors.push({ path: `${at}/code`, message: 'code must be a FHIR code' });
  return errors.length > before;
}

/**
 * Checks one answer (at JSON pointer `path`) against its question item. Structural questions
 * (cardinality, nesting, enableWhen) belong to validate.ts.
 */
export function checkAnswer(q: Questionnaire, item: QuestionnaireItem, answer: unknown, path: string, errors: ErrorDetail[]): void {
  if (!isObject(answer)) {
    errors.push({ path, message: 'An answer must be an object' });
    return;
  }
  checkProperties(answer, ANSWER_KEYS, path, errors);
  const present = VALUE_KEYS.filter((k) => answer[k] !== undefined);
  if (present.length > 1) {
    errors.push({ path, message: `An answer carries one value[x]; found ${present.join(', ')}` });
    return;
  }
  const av = answerValueOf(answer);
  if (!av) {
    if (!Array.isArray(answer.item)) errors.push({ path, message: 'An answer needs a value[x]' });
    return;
  }
  const expected = EXPECTED[item.type];
  if (expected && !expected.includes(av.key)) {
    errors.push({
      path: `${path}/${av.key}`,
      message: `Item ${quote(item.linkId)} is of type ${item.type}; its answers use ${expected.join(' or ')}`,
    });
    return;
  }
  if (valueProblem(av, path, errors)) return;
  if (typeof av.value === 'string' && typeof item.maxLength === 'number' && charLength(av.value) > item.maxLength) {
    errors.push({
      path: `${path}/${av.key}`,
      message: `Answer to ${quote(item.linkId)} is longer than its maxLength of ${item.maxLength} characters`,
    });
  }
  if (item.type === 'choice' || item.type === 'open-choice') checkChoice(q, item, av, `${path}/${av.key}`, errors);
  if (item.type === 'quantity') checkUnit(q, item, av.value as Record<string, unknown>, `${path}/${av.key}`, errors);
}

/**
 * choice: the answer must be one of the answerOptions (of the same kind), or a member of the
 * answerValueSet when that set is contained. open-choice additionally takes free text
 * (valueString); a coding must still be one of the options. An answerValueSet we cannot
 * resolve (external, no terminology server here) cannot be checked beyond the type.
 */
function checkChoice(q: Questionnaire, item: QuestionnaireItem, av: AnswerValue, at: string, errors: ErrorDetail[]): void {
  const freeText = item.type === 'open-choice' && av.key === 'valueString';
  const notAllowed = () => errors.push({ path: at, message: `Answer to ${quote(item.linkId)} is not one of its allowed options` });
  const options = Array.isArray(item.answerOption) ? item.answerOption.filter(isObject) : [];
  if (options.length > 0) {
    if (matchOption(q, item, av) || freeText) return;
    const kinds = CHOICE_KEYS.filter((k) => options.some((o) => o[k] !== undefined));
    if (!kinds.includes(av.key)) {
      const allowed = item.type === 'open-choice' ? [...new Set([...kinds, 'valueString'])] : kinds;
      errors.push({ path: at, message: `Answers to ${quote(item.linkId)} use ${allowed.join(' or ')}` });
    } else notAllowed();
    return;
  }
  if (typeof item.answerValueSet !== 'string' || freeText) return;
  if (av.key !== 'valueCoding') {
    const allowed = item.type === 'open-choice' ? 'valueCoding or valueString' : 'valueCoding';
    errors.push({ path: at, message: `Answers to ${quote(item.linkId)} use ${allowed}` });
    return;
  }
  const vs = resolveValueSet(q, item.answerValueSet);
  if (!vs) return;
  const codes = valueSetCodes(q, vs);
  if (!findConcept(q, codes.concepts, av.value as Coding) && codes.complete) notAllowed();
}

/** questionnaire-unitOption lists the units a quantity may use; without it any unit goes. */
function checkUnit(
  q: Questionnaire, item: QuestionnaireItem, value: Record<string, unknown>, at: string, errors: ErrorDetail[],
): void {
  const units = (item.extension ?? [])
    .filter((e) => e.url === UNIT_OPTION_URL && isObject(e.valueCoding))
    .map((e) => e.valueCoding as Coding);
  if (units.length === 0) return;
  const ok = units.some((u) =>
    (typeof value.code === 'string' && codingMatches(q, u, { system: value.system as string | undefined, code: value.code })) ||
    (value.code === undefined && typeof value.unit === 'string' && (value.unit === u.code || value.unit === u.display)));
  if (!ok) errors.push({ path: at, message: `The unit of the answer to ${quote(item.linkId)} is not one of its unitOptions` });
}
