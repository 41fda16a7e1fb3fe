// Where an answer's weight (score contribution) comes from. Only the Questionnaire is trusted.
//
// SDC's weight()/ordinal() (and fhirpath.js, and the scoring-edge-cases fixture's item texts) look
// at a score extension embedded in the *response* first: on the answer, on its valueCoding, in
// `_valueInteger`, or in a CodeSystem contained in the QuestionnaireResponse. That rule suits a
// form filler copying weights into the response it builds; a server receiving responses from
// clients must not let the client choose its own score. So we read weights from the
// Questionnaire only, in this order:
//   1. the matching answerOption's ordinalValue/itemWeight extension;
//   2. the matching concept of the item's contained answerValueSet (extension);
//   3. the matching concept of a CodeSystem contained in the Questionnaire, for the coding's
//      system (or, for a coding without system, the system of the option/value-set entry it
//      matched): extension or weight property.
// Client-sent weights are ignored, never "overridden by" or averaged with ours.

import type { Coding, Questionnaire, QuestionnaireItem, ResponseAnswer } from '../../questionnaires/fhir-types.js';
import { answerValueOf, isObject, matchOption } from './answers.js';
import {
  codeSystemConcepts, containedCodeSystem, findConcept, resolveValueSet, valueSetCodes, weightFromExtensions,
} from './terminology.js';

export function answerWeight(q: Questionnaire, item: QuestionnaireItem, answer: ResponseAnswer): number | undefined {
  const av = answerValueOf(answer);
  if (!av) return undefined;
  const option = matchOption(q, item, av);
  const fromOption = weightFromExtensions(option?.extension);
  if (fromOption !== undefined) return fromOption;
  if (av.key !== 'valueCoding' || !isObject(av.value)) return undefined;
  const coding = av.value as Coding;
  let system = coding.system ?? (isObject(option?.valueCoding) ? option.valueCoding.system : undefined);
  const vs = resolveValueSet(q, item.answerValueSet);
  if (vs) {
    const concept = findConcept(q, valueSetCodes(q, vs).concepts, coding);
    if (concept?.weight !== undefined) return concept.weight;
    system ??= concept?.system;
  }
  const cs = containedCodeSystem(q, system);
  return cs ? findConcept(q, codeSystemConcepts(cs), coding)?.weight : undefined;
}

/** Does the Questionnaire define any weight at all? (If not, it is not a scored instrument.) */
export function questionnaireHasWeights(q: Questionnaire): boolean {
  const inItems = (items: unknown): boolean =>
    Array.isArray(items) && items.some((it) => isObject(it) && (
      (Array.isArray(it.answerOption) &&
        it.answerOption.some((o) => isObject(o) && weightFromExtensions(o.extension) !== undefined)) ||
      inItems(it.item)));
  if (inItems(q.item)) return true;
  for (const r of Array.isArray(q.contained) ? q.contained : []) {
    if (!isObject(r)) continue;
    if (r.resourceType === 'ValueSet' && valueSetCodes(q, r as never).concepts.some((c) => c.weight !== undefined)) return true;
    if (r.resourceType === 'CodeSystem' && codeSystemConcepts(r as never).some((c) => c.weight !== undefined)) return true;
  }
  return false;
}
