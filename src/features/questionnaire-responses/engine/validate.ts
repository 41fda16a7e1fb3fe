// Validates QuestionnaireResponse items against their Questionnaire and lists every problem.
//
// PATH CONVENTION: every ErrorDetail.path is an RFC 6901 JSON Pointer into the response, rooted at
// the items array. By default that array is `/item` (as in a FHIR QuestionnaireResponse), so the
// first answer of the third top-level item is `/item/2/answer/0`, its coding `/item/2/answer/0/
// valueCoding`, and an item nested under that answer `/item/2/answer/0/item/0`. A transport whose
// body keeps the items elsewhere passes `basePath` (e.g. `/items`). Pointers name positions, not
// linkIds, because linkIds repeat (repeating groups) and may contain "/" (LHC-Forms uses
// "/44250-9"); the linkId is in the message instead. A required item that is missing is reported
// at the array it should be in (e.g. `/item` or `/item/1/item`).
//
// Both modes: known linkIds, placed where the questionnaire puts them (children of a group under
// that group instance, children of a question under one of its answers), in questionnaire order;
// only repeating groups repeat as items, only repeating questions take several answers; no
// answers on group/display items; every answer fits its item (answers.ts). readOnly items may
// carry answers (FHIR allows calculated values to be stored); scoring ignores them.
// Submit mode adds: enabled required items are answered (a required group needs an answered
// descendant), and disabled items carry no answers. Like the HL7 validator, required items are
// checked only inside group instances / answers that are present: an absent optional group does
// not make its required children missing. Items the server computes (calculatedExpression) are
// never required of the client. Draft mode skips these two rules: a draft may be incomplete and
// may keep answers the user will need again if they change the controlling answer back.

import type { ErrorDetail } from '../../../errors.js';
import type { Extension, Questionnaire, QuestionnaireItem, ResponseItem } from '../../questionnaires/fhir-types.js';
import { answerValueOf, checkAnswer, checkProperties, isObject, quote } from './answers.js';
import { Enablement, type ResponseNode } from './enable-when.js';

export type ValidationMode = 'draft' | 'submit';

export interface ValidateOptions {
  /** JSON Pointer of the items array in the request body; default `/item`. */
  basePath?: string;
}

const ITEM_KEYS = new Set(['linkId', 'text', 'definition', 'answer', 'item', 'id', 'extension', '_linkId', '_text', '_definition']);
export const CALCULATED_EXPRESSION_URL = 'http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression';

export const isCalculated = (item: QuestionnaireItem): boolean =>
  Array.isArray(item.extension) && item.extension.some((e: Extension) => e?.url === CALCULATED_EXPRESSION_URL);

interface Ctx {
  q: Questionnaire;
  /** linkId → the linkId of its parent item (null at the top level), to explain misplaced items. */
  parents: Map<string, string | null>;
  errors: ErrorDetail[];
}

export function validateResponse(
  q: Questionnaire,
  items: ResponseItem[],
  mode: ValidationMode,
  options: ValidateOptions = {},
): ErrorDetail[] {
  const base = options.basePath ?? '/item';
  const ctx: Ctx = { q, parents: new Map(), errors: [] };
  indexParents(q.item ?? [], null, ctx.parents);
  const root: ResponseNode = { item: null, data: null, pointer: '', parent: null, children: [], answers: [] };
  if (!Array.isArray(items)) {
    ctx.errors.push({ path: base, message: 'item must be an array' });
    return ctx.errors;
  }
  walkLevel(ctx, q.item ?? [], items, base, root, root.children);
  if (mode === 'submit') checkSubmit(ctx, new Enablement(q), root, q.item ?? [], root.children, base);
  return ctx.errors;
}

function indexParents(items: QuestionnaireItem[], parent: string | null, out: Map<string, string | null>): void {
  for (const it of items) {
    if (!isObject(it) || typeof it.linkId !== 'string') continue;
    out.set(it.linkId, parent);
    if (Array.isArray(it.item)) indexParents(it.item, it.linkId, out);
  }
}

/**
 * Checks the response items at one level against the questionnaire items allowed there, and
 * builds the response tree (into `into`) that the submit rules and enableWhen use.
 */
function walkLevel(
  ctx: Ctx, allowed: QuestionnaireItem[], items: unknown, at: string, parent: ResponseNode, into: ResponseNode[],
): void {
  if (items === undefined) return;
  if (!Array.isArray(items)) {
    ctx.errors.push({ path: at, message: 'item must be an array' });
    return;
  }
  const order = new Map(allowed.flatMap((it, i) => (isObject(it) ? [[it.linkId, i] as const] : [])));
  const seen = new Set<string>();
  let lastPosition = -1;
  items.forEach((raw: unknown, i) => {
    const path = `${at}/${i}`;
    if (!isObject(raw)) {
      ctx.errors.push({ path, message: 'An item must be an object' });
      return;
    }
    checkProperties(raw, ITEM_KEYS, path, ctx.errors);
    const linkId = raw.linkId;
    if (typeof linkId !== 'string' || linkId.length === 0) {
      ctx.errors.push({ path: `${path}/linkId`, message: 'linkId is required' });
      return;
    }
    const position = order.get(linkId);
    const def = position === undefined ? undefined : allowed[position];
    if (position === undefined || !def) {
      ctx.errors.push({ path: `${path}/linkId`, message: misplaced(ctx, linkId, parent) });
      return;
    }
    if (position < lastPosition) {
      ctx.errors.push({ path, message: `Item ${quote(linkId)} is out of order: items follow the questionnaire's order` });
    }
    lastPosition = Math.max(lastPosition, position);
    if (seen.has(linkId) && !(def.type === 'group' && def.repeats)) {
      ctx.errors.push({
        path,
        message: def.type === 'group'
          ? `Group ${quote(linkId)} does not repeat; it may appear only once here`
          : `Item ${quote(linkId)} may appear only once here; a repeating question keeps all its answers in one item`,
      });
    }
    seen.add(linkId);
    if (raw.text !== undefined && typeof raw.text !== 'string') {
      ctx.errors.push({ path: `${path}/text`, message: 'text must be a string' });
    }
    const node: ResponseNode = { item: def, data: raw as ResponseItem, pointer: path, parent, children: [], answers: [] };
    into.push(node);
    walkItem(ctx, def, raw, path, node);
  });
}

function walkItem(ctx: Ctx, def: QuestionnaireItem, raw: Record<string, unknown>, path: string, node: ResponseNode): void {
  const children = Array.isArray(def.item) ? def.item : [];
  const answers = raw.answer;
  const hasAnswers = Array.isArray(answers) ? answers.length > 0 : answers !== undefined;
  if (def.type === 'group' || def.type === 'display') {
    if (hasAnswers) {
      const kind = def.type === 'group' ? 'Group' : 'Display';
      ctx.errors.push({ path: `${path}/answer`, message: `${kind} item ${quote(def.linkId)} cannot have answers` });
    }
    walkLevel(ctx, def.type === 'group' ? children : [], raw.item, `${path}/item`, node, node.children);
    return;
  }
  if (Array.isArray(raw.item) && raw.item.length > 0) {
    ctx.errors.push({
      path: `${path}/item`,
      message: `Items nested under question ${quote(def.linkId)} belong under one of its answers (answer[].item)`,
    });
  }
  if (answers === undefined) return;
  if (!Array.isArray(answers)) {
    ctx.errors.push({ path: `${path}/answer`, message: 'answer must be an array' });
    return;
  }
  if (answers.length > 1 && !def.repeats) {
    ctx.errors.push({ path: `${path}/answer/1`, message: `Item ${quote(def.linkId)} does not repeat: it takes one answer` });
  }
  answers.forEach((answer: unknown, j) => {
    const at = `${path}/answer/${j}`;
    checkAnswer(ctx.q, def, answer, at, ctx.errors);
    if (!isObject(answer)) return;
    const entry = { data: answer, pointer: at, children: [] as ResponseNode[] };
    node.answers.push(entry);
    walkLevel(ctx, children, answer.item, `${at}/item`, node, entry.children);
  });
}

/** Explains an item that is not allowed at this level: unknown, or belonging elsewhere. */
function misplaced(ctx: Ctx, linkId: string, parent: ResponseNode): string {
  if (!ctx.parents.has(linkId)) return `Unknown linkId ${quote(linkId)}: the questionnaire has no such item`;
  const owner = ctx.parents.get(linkId);
  const where = owner === null ? 'at the top level' : `under item ${quote(owner ?? '')}`;
  const here = parent.item ? `under ${quote(parent.item.linkId)}` : 'at the top level';
  return `Item ${quote(linkId)} belongs ${where}, not ${here}`;
}

const hasValue = (node: ResponseNode): boolean => node.answers.some((a) => answerValueOf(a.data) !== undefined);

/** Does the instance, or anything below it, carry an answer value? */
function answeredDeep(node: ResponseNode): boolean {
  return hasValue(node) || node.children.some(answeredDeep) || node.answers.some((a) => a.children.some(answeredDeep));
}

/** Submit rules for the items allowed in one container (root, group instance or answer). */
function checkSubmit(
  ctx: Ctx, en: Enablement, owner: ResponseNode, allowed: QuestionnaireItem[], present: ResponseNode[], at: string,
): void {
  for (const def of allowed) {
    if (!isObject(def)) continue;
    const instances = present.filter((n) => n.item === def);
    if (!en.isEnabled(def, owner)) {
      for (const n of instances.filter(answeredDeep)) {
        ctx.errors.push({
          path: n.pointer,
          message: `Item ${quote(def.linkId)} is disabled (its enableWhen conditions are not met) and must not be answered`,
        });
      }
      continue;
    }
    if (def.required === true && def.type !== 'display' && !isCalculated(def)) {
      const ok = def.type === 'group' ? instances.some(answeredDeep) : instances.some(hasValue);
      if (!ok) {
        ctx.errors.push({
          path: at,
          message: def.type === 'group'
            ? `Required group ${quote(def.linkId)} needs at least one answer`
            : `Required item ${quote(def.linkId)} has no answer`,
        });
      }
    }
    const children = Array.isArray(def.item) ? def.item : [];
    if (children.length === 0) continue;
    for (const n of instances) {
      if (def.type === 'group') checkSubmit(ctx, en, n, children, n.children, `${n.pointer}/item`);
      else for (const a of n.answers) checkSubmit(ctx, en, n, children, a.children, `${a.pointer}/item`);
    }
  }
}
