// The terminology the engine can resolve without a terminology server: answerOption lists, and
// ValueSets/CodeSystems contained in the Questionnaire. Shared by validation (is this coding
// allowed?) and scoring (what weight does it carry?), so both read codes the same way.
//
// Coding-matching rules (what a careful FHIR validator accepts):
// * Codes compare exactly. Codes are case-sensitive in FHIR unless their CodeSystem says
//   otherwise, so only a contained CodeSystem with `caseSensitive: false` makes them
//   case-insensitive. Internal single spaces are part of the code ("More than half the days").
//   Leading/trailing whitespace makes the code invalid FHIR; validation rejects it before
//   matching, so no trimming happens here.
// * Systems compare exactly when both sides carry one. When either side has no system (LHC-Forms
//   writes answerOption and answer codings without one), the code alone decides.
// * display and version never decide a match (validators only warn on a display mismatch).

import type {
  CodeSystem,
  Coding,
  Questionnaire,
  ValueSet,
  ValueSetConcept,
} from '../../questionnaires/fhir-types.js';

export const ORDINAL_VALUE_URL = 'http://hl7.org/fhir/StructureDefinition/ordinalValue';
export const ITEM_WEIGHT_URL = 'http://hl7.org/fhir/StructureDefinition/itemWeight';
/** ordinalValue is the R4 name; itemWeight its successor (same meaning, same places). */
export const WEIGHT_EXTENSION_URLS: ReadonlySet<string> = new Set([ORDINAL_VALUE_URL, ITEM_WEIGHT_URL]);
// CodeSystem properties that carry a weight: the R5 standard property and the names used for it.
const WEIGHT_PROPERTY_URIS = new Set([
  'http://hl7.org/fhir/concept-properties#itemWeight',
  'http://hl7.org/fhir/concept-properties#ordinalValue',
]);
const WEIGHT_PROPERTY_CODES = new Set(['itemWeight', 'weight', 'ordinalValue']);

export interface Concept {
  system?: string;
  code: string;
  weight?: number;
}

/** The codes a value set allows; `complete` is false when it also allows codes we cannot list. */
export interface CodeList {
  concepts: Concept[];
  complete: boolean;
}

type Contained = { resourceType: string; id?: string; url?: string; [k: string]: unknown };

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The number in the first ordinalValue/itemWeight extension of an element, if any. */
export function weightFromExtensions(extensions: unknown): number | undefined {
  if (!Array.isArray(extensions)) return undefined;
  for (const ext of extensions) {
    if (!isObject(ext) || typeof ext.url !== 'string' || !WEIGHT_EXTENSION_URLS.has(ext.url)) continue;
    const v = ext.valueDecimal ?? ext.valueInteger;
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  return undefined;
}

function contained(q: Questionnaire): Contained[] {
  return Array.isArray(q.contained) ? (q.contained.filter(isObject) as Contained[]) : [];
}

/** `#id` points at a contained resource; anything else is a canonical URL (optionally `|version`). */
function findContained(q: Questionnaire, type: string, ref: string): Contained | undefined {
  const all = contained(q).filter((r) => r.resourceType === type);
  if (ref.startsWith('#')) return all.find((r) => r.id === ref.slice(1));
  const url = ref.split('|')[0];
  return all.find((r) => r.url === url);
}

export function resolveValueSet(q: Questionnaire, ref: string | undefined): ValueSet | undefined {
  return ref ? (findContained(q, 'ValueSet', ref) as ValueSet | undefined) : undefined;
}

export function containedCodeSystem(q: Questionnaire, system: string | undefined): CodeSystem | undefined {
  return system ? (findContained(q, 'CodeSystem', system) as CodeSystem | undefined) : undefined;
}

/** A concept's weight: its extension, or (CodeSystem) a weight property. */
function conceptWeight(concept: Record<string, unknown>, cs?: CodeSystem): number | undefined {
  const fromExt = weightFromExtensions(concept.extension);
  if (fromExt !== undefined) return fromExt;
  if (!Array.isArray(concept.property)) return undefined;
  const declared = Array.isArray(cs?.property) ? (cs.property as unknown[]).filter(isObject) : [];
  const weightCodes = new Set(
    declared.filter((p) => typeof p.uri === 'string' && WEIGHT_PROPERTY_URIS.has(p.uri)).map((p) => p.code),
  );
  for (const p of concept.property) {
    if (!isObject(p) || typeof p.code !== 'string') continue;
    if (!weightCodes.has(p.code) && !WEIGHT_PROPERTY_CODES.has(p.code)) continue;
    const v = p.valueDecimal ?? p.valueInteger;
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  return undefined;
}

/** Every concept of a CodeSystem, hierarchy flattened. */
export function codeSystemConcepts(cs: CodeSystem): Concept[] {
  const out: Concept[] = [];
  const walk = (list: unknown) => {
    if (!Array.isArray(list)) return;
    for (const c of list) {
      if (!isObject(c) || typeof c.code !== 'string') continue;
      out.push({ system: cs.url, code: c.code, weight: conceptWeight(c, cs) });
      walk(c.concept);
    }
  };
  walk(cs.concept);
  return out;
}

/**
 * The codes of a contained ValueSet. Enumerated concepts (compose.include.concept,
 * expansion.contains) are listed; a whole-system include is listed when that CodeSystem is
 * contained too. Filters, imported value sets and external systems cannot be listed without a
 * terminology server, so they make the list incomplete (membership then cannot be refuted).
 */
export function valueSetCodes(q: Questionnaire, vs: ValueSet): CodeList {
  const concepts: Concept[] = [];
  let complete = true;
  const fromExpansion = (list: unknown) => {
    if (!Array.isArray(list)) return;
    for (const c of list) {
      if (!isObject(c)) continue;
      if (typeof c.code === 'string') {
        concepts.push({ system: c.system as string | undefined, code: c.code, weight: conceptWeight(c) });
      }
      fromExpansion(c.contains);
    }
  };
  const include = Array.isArray(vs.compose?.include) ? vs.compose.include : [];
  for (const inc of include) {
    if (!isObject(inc)) continue;
    if (Array.isArray(inc.filter) && inc.filter.length > 0) complete = false;
    if (Array.isArray(inc.valueSet) && inc.valueSet.length > 0) complete = false;
    if (Array.isArray(inc.concept)) {
      for (const c of inc.concept as ValueSetConcept[]) {
        if (isObject(c) && typeof c.code === 'string') {
          concepts.push({ system: inc.system, code: c.code, weight: conceptWeight(c) });
        }
      }
    } else if (typeof inc.system === 'string') {
      const cs = containedCodeSystem(q, inc.system);
      if (cs) concepts.push(...codeSystemConcepts(cs));
      else complete = false;
    }
  }
  if (vs.expansion) fromExpansion(vs.expansion.contains);
  else if (include.length === 0) complete = false;
  return { concepts, complete };
}

/** Codes are case-sensitive unless a contained CodeSystem for the system declares otherwise. */
function caseInsensitive(q: Questionnaire, system: string | undefined): boolean {
  return containedCodeSystem(q, system)?.caseSensitive === false;
}

/** Does the answer coding denote the expected code? (Rules at the top of this file.) */
export function codingMatches(
  q: Questionnaire,
  expected: { system?: string; code?: string },
  actual: Pick<Coding, 'system' | 'code'>,
): boolean {
  if (typeof expected.code !== 'string' || typeof actual.code !== 'string') return false;
  if (expected.system && actual.system && expected.system !== actual.system) return false;
  if (expected.code === actual.code) return true;
  const system = expected.system ?? actual.system;
  return caseInsensitive(q, system) && expected.code.toLowerCase() === actual.code.toLowerCase();
}

/** The first concept of a list the coding denotes. */
export function findConcept(q: Questionnaire, list: Concept[], coding: Coding): Concept | undefined {
  return list.find((c) => codingMatches(q, c, coding));
}
