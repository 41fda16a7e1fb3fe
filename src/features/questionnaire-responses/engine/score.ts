// Scores a response the server's way: from the Questionnaire, never from what the client claims.
//
// 1. No weights anywhere in the Questionnaire → null (not a scored instrument).
// 2. The items are sanitized first: score extensions the client embedded in answers (on the
//    answer, its valueCoding or `_value[x]`) are dropped, and so are the client's answers to
//    calculated items (a total it sent, e.g. PHQ-9 "/44261-6": 15 or the SDC example's 13).
// 3. If the score item defines the total in FHIRPath, that expression decides (calculated.ts).
// 4. Otherwise (no expression, CQL, an expression fhirpath.js cannot run, or an empty result) the
//    total is the sum of the weights of all answers, at any depth, of items that are neither
//    readOnly nor calculated. Answers without a weight add nothing.
// 5. The band comes from the recognised instrument (instruments.ts), else null.
// To store the total in the response itself, pass the result to withServerScore (score-item.ts).

import type { Questionnaire, QuestionnaireItem, ResponseAnswer, ResponseItem } from '../../questionnaires/fhir-types.js';
import { isObject } from './answers.js';
import { evaluateCalculatedTotal } from './calculated.js';
import { bandFor } from './instruments.js';
import { findScoreItem } from './score-item.js';
import { WEIGHT_EXTENSION_URLS } from './terminology.js';
import { isCalculated } from './validate.js';
import { answerWeight, questionnaireHasWeights } from './weights.js';

export interface Score {
  total: number;
  band: string | null;
}

export function scoreResponse(q: Questionnaire, items: ResponseItem[]): Score | null {
  if (!questionnaireHasWeights(q)) return null;
  const byLinkId = new Map<string, QuestionnaireItem>();
  indexItems(q.item, byLinkId);
  const clean = sanitize(Array.isArray(items) ? items : [], byLinkId);
  const target = findScoreItem(q);
  const calculated = target ? evaluateCalculatedTotal(q, clean, target) : undefined;
  const total = round(calculated ?? sumWeights(q, clean, byLinkId));
  return { total, band: bandFor(q, total) };
}

function indexItems(items: unknown, out: Map<string, QuestionnaireItem>): void {
  for (const it of Array.isArray(items) ? items : []) {
    if (!isObject(it) || typeof it.linkId !== 'string') continue;
    out.set(it.linkId, it as QuestionnaireItem);
    indexItems(it.item, out);
  }
}

/** Decimal weights (0.1 + 0.2) should not leave binary noise in a stored score. */
const round = (n: number): number => Math.round(n * 1e9) / 1e9;

/** A copy of an element without ordinalValue/itemWeight extensions (and without an emptied list). */
function stripWeights<T extends Record<string, unknown>>(el: T): T {
  if (!Array.isArray(el.extension)) return { ...el };
  const kept = el.extension.filter((e) => !(isObject(e) && typeof e.url === 'string' && WEIGHT_EXTENSION_URLS.has(e.url)));
  const { extension: _dropped, ...rest } = el;
  return (kept.length > 0 ? { ...rest, extension: kept } : rest) as T;
}

/** A deep copy without client-sent weights and without client answers to calculated items. */
function sanitize(items: unknown[], byLinkId: Map<string, QuestionnaireItem>): ResponseItem[] {
  return items.filter(isObject).map((raw) => {
    const it = structuredClone(raw) as ResponseItem;
    const def = typeof it.linkId === 'string' ? byLinkId.get(it.linkId) : undefined;
    if (Array.isArray(it.item)) it.item = sanitize(it.item, byLinkId);
    if (def && isCalculated(def)) delete it.answer;
    if (Array.isArray(it.answer)) it.answer = it.answer.filter(isObject).map((a) => sanitizeAnswer(a, byLinkId));
    return it;
  });
}

function sanitizeAnswer(a: ResponseAnswer, byLinkId: Map<string, QuestionnaireItem>): ResponseAnswer {
  const out = stripWeights(a);
  if (isObject(out.valueCoding)) out.valueCoding = stripWeights(out.valueCoding);
  for (const key of Object.keys(out)) {
    const shadow = out[key];
    if (!key.startsWith('_') || !isObject(shadow)) continue;
    const kept = stripWeights(shadow);
    if (Object.keys(kept).length > 0) out[key] = kept;
    else delete out[key];
  }
  if (Array.isArray(out.item)) out.item = sanitize(out.item, byLinkId);
  return out;
}

function sumWeights(q: Questionnaire, items: ResponseItem[], byLinkId: Map<string, QuestionnaireItem>): number {
  let total = 0;
  for (const it of items) {
    const def = byLinkId.get(it.linkId);
    const scored = def && !def.readOnly && !isCalculated(def);
    for (const a of Array.isArray(it.answer) ? it.answer : []) {
      if (scored) total += answerWeight(q, def, a) ?? 0;
      if (Array.isArray(a.item)) total += sumWeights(q, a.item, byLinkId);
    }
    if (Array.isArray(it.item)) total += sumWeights(q, it.item, byLinkId);
  }
  return total;
}
