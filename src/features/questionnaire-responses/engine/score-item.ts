// The score item: the Questionnaire item that holds the total (PHQ-9 "/44261-6", SDC "H1/TS",
// Apgar "9272-6", GAD-7 "/70274-6"), and writing the server's total into it.
//
// It is the calculated item (sdc-questionnaire-calculatedExpression) whose expression, or a
// variable in its scope, reads weights (ordinal(), weight(), ordinalValue, itemWeight) — the last
// one in document order if several do, since totals follow their subscores. A form whose only
// calculated numeric item computes it in a language we cannot read (GAD-7's CQL) still has that
// item as its score item.

import type {
  Coding, Extension, Questionnaire, QuestionnaireItem, ResponseAnswer, ResponseItem,
} from '../../questionnaires/fhir-types.js';
import { isObject } from './answers.js';
import { CALCULATED_EXPRESSION_URL, isCalculated } from './validate.js';

export const VARIABLE_URL = 'http://hl7.org/fhir/StructureDefinition/variable';
const UNIT_URL = 'http://hl7.org/fhir/StructureDefinition/questionnaire-unit';
const READS_WEIGHTS = /\b(ordinal|weight)\s*\(|ordinalValue|itemWeight/;
const NUMERIC_TYPES = new Set(['decimal', 'integer', 'quantity']);

export interface ScoreItem {
  item: QuestionnaireItem;
  /** Outermost first. */
  ancestors: QuestionnaireItem[];
}

export type Expression = { name?: string; language: string; expression: string };

export function expressionsOf(extensions: Extension[] | undefined, url: string): Expression[] {
  return (Array.isArray(extensions) ? extensions : [])
    .filter((e) => isObject(e) && e.url === url && isObject(e.valueExpression) && typeof e.valueExpression.expression === 'string')
    .map((e) => e.valueExpression as Expression);
}

export function findScoreItem(q: Questionnaire): ScoreItem | null {
  const calculated: ScoreItem[] = [];
  const walk = (items: unknown, ancestors: QuestionnaireItem[]) => {
    for (const it of Array.isArray(items) ? items : []) {
      if (!isObject(it)) continue;
      const item = it as QuestionnaireItem;
      if (isCalculated(item)) calculated.push({ item, ancestors });
      walk(item.item, [...ancestors, item]);
    }
  };
  walk(q.item, []);
  // Its own expression, or any variable it can see (its own, its ancestors', the form's).
  const readsWeights = calculated.filter(({ item, ancestors }) =>
    [...expressionsOf(item.extension, CALCULATED_EXPRESSION_URL),
      ...[q, ...ancestors, item].flatMap((owner) => expressionsOf(owner.extension, VARIABLE_URL))]
      .some((e) => READS_WEIGHTS.test(e.expression)));
  if (readsWeights.length > 0) return readsWeights[readsWeights.length - 1] ?? null;
  const numeric = calculated.filter(({ item }) => NUMERIC_TYPES.has(item.type));
  return numeric.length === 1 ? (numeric[0] ?? null) : null;
}

/** The answer that carries `total` for an item of this type, or null if the type cannot. */
function scoreAnswer(item: QuestionnaireItem, total: number): ResponseAnswer | null {
  if (item.type === 'decimal') return { valueDecimal: total };
  if (item.type === 'integer') return Number.isInteger(total) ? { valueInteger: total } : null;
  if (item.type !== 'quantity') return null;
  const unit = (item.extension ?? []).find((e) => e.url === UNIT_URL && isObject(e.valueCoding))?.valueCoding as Coding | undefined;
  return {
    valueQuantity: {
      value: total,
      ...(unit?.display || unit?.code ? { unit: unit.display ?? unit.code } : {}),
      ...(unit?.system ? { system: unit.system } : {}),
      ...(unit?.code ? { code: unit.code } : {}),
    },
  };
}

/**
 * A copy of `items` whose score item answers with `total` — whatever the client sent there is
 * replaced. If the client left the score item out, it is inserted at its questionnaire position
 * (creating its non-repeating parent groups if needed). Without a score item, or inside a
 * repeating group or under a question (no single place to put it), the items are returned as-is.
 */
export function withServerScore(q: Questionnaire, items: ResponseItem[], score: { total: number } | null): ResponseItem[] {
  const copy = structuredClone(items);
  const target = score ? findScoreItem(q) : null;
  const answer = target && score ? scoreAnswer(target.item, score.total) : null;
  if (!target || !answer) return copy;
  let found = false;
  const replace = (list: unknown) => {
    for (const it of Array.isArray(list) ? (list as ResponseItem[]) : []) {
      if (!isObject(it)) continue;
      if (it.linkId === target.item.linkId) {
        it.answer = [structuredClone(answer)];
        found = true;
      }
      replace(it.item);
      for (const a of Array.isArray(it.answer) ? it.answer : []) if (isObject(a)) replace(a.item);
    }
  };
  replace(copy);
  if (found || target.ancestors.some((a) => a.type !== 'group' || a.repeats)) return copy;
  let container = copy;
  let siblings = q.item ?? [];
  for (const group of target.ancestors) {
    let instance = container.find((it) => isObject(it) && it.linkId === group.linkId);
    if (!instance) {
      instance = { linkId: group.linkId, ...(group.text ? { text: group.text } : {}), item: [] };
      insertInOrder(container, instance, siblings);
    }
    container = Array.isArray(instance.item) ? instance.item : (instance.item = []);
    siblings = group.item ?? [];
  }
  const item = target.item;
  insertInOrder(container, { linkId: item.linkId, ...(item.text ? { text: item.text } : {}), answer: [answer] }, siblings);
  return copy;
}

/** Inserts before the first sibling that comes later in the questionnaire. */
function insertInOrder(list: ResponseItem[], entry: ResponseItem, defs: QuestionnaireItem[]): void {
  const pos = (linkId: unknown) => defs.findIndex((d) => d.linkId === linkId);
  const mine = pos(entry.linkId);
  const at = list.findIndex((it) => isObject(it) && pos(it.linkId) > mine);
  if (at === -1) list.push(entry);
  else list.splice(at, 0, entry);
}
