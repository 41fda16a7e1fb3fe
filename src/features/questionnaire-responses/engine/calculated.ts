// Evaluates the score item's FHIRPath calculatedExpression with HL7's fhirpath.js (R4 model),
// the way a SDC form filler would, so a questionnaire that defines its total in FHIRPath gets
// exactly that total:
// * %resource is a QuestionnaireResponse built from the (already sanitized) items, and is also
//   the focus ($this / %context) of the expression: the SDC PHQ-9's `answers()…` only makes sense
//   over the whole response, and the LHC-Forms expressions name %resource explicitly anyway.
// * %questionnaire is a copy of the Questionnaire (fhirpath.js annotates what it evaluates).
// * `variable` extensions in scope are evaluated first, in order: the Questionnaire's, then each
//   ancestor item's (outermost first), then the item's own; each sees the ones before it.
// * ordinal()/weight() are replaced by our questionnaire-only weight lookup (weights.ts), so an
//   expression cannot pick up client-sent weights and codings without a system resolve like
//   everywhere else in the engine (fhirpath.js's own weight() finds no weight for them).
// * No terminology server, FHIR server or async functions: an expression needing them throws.
// Anything that throws, or a result that is not one number (e.g. the Apgar form's `{}` until all
// five signs are answered), yields undefined and the caller falls back to summing weights.

import fhirpath from 'fhirpath';
import r4 from 'fhirpath/fhir-context/r4';
import type { Questionnaire, QuestionnaireItem, ResponseAnswer, ResponseItem } from '../../questionnaires/fhir-types.js';
import { isObject } from './answers.js';
import { expressionsOf, VARIABLE_URL, type ScoreItem } from './score-item.js';
import { weightFromExtensions } from './terminology.js';
import { CALCULATED_EXPRESSION_URL } from './validate.js';
import { answerWeight } from './weights.js';

const FHIRPATH = 'text/fhirpath';

interface Node {
  data: unknown;
  path: string | null;
  parentResNode: Node | null;
}

/** What ordinal()/weight() need, found through the env object fhirpath.js hands them as `this.vars`. */
interface Scoring {
  q: Questionnaire;
  byLinkId: Map<string, QuestionnaireItem>;
}
const scoringByEnv = new WeakMap<object, Scoring>();

function weighNodes(this: { vars?: object }, nodes: Node[]): number[] {
  const scoring = this.vars ? scoringByEnv.get(this.vars) : undefined;
  if (!scoring) return [];
  return nodes.flatMap((n) => {
    const w = nodeWeight(scoring, n);
    return w === undefined ? [] : [w];
  });
}

const WEIGHT_FN = { fn: weighNodes, arity: { 0: [] }, internalStructures: true };
const OPTIONS = { userInvocationTable: { ordinal: WEIGHT_FN, weight: WEIGHT_FN } };

// Parsing dominates the cost of an evaluation (tens of ms for the PHQ-9's eleven expressions), and
// a questionnaire's expressions are the same for every response: compile each once. Bounded, as
// expressions come from stored questionnaires; a full cache simply starts over.
type Compiled = (resource: unknown, env: Record<string, unknown>) => unknown[];
const compiledCache = new Map<string, Compiled>();
function compiled(expression: string): Compiled {
  let fn = compiledCache.get(expression);
  if (!fn) {
    if (compiledCache.size >= 1000) compiledCache.clear();
    fn = fhirpath.compile(expression, r4, OPTIONS) as Compiled;
    compiledCache.set(expression, fn);
  }
  return fn;
}

export function evaluateCalculatedTotal(q: Questionnaire, items: ResponseItem[], target: ScoreItem): number | undefined {
  const calc = expressionsOf(target.item.extension, CALCULATED_EXPRESSION_URL)[0];
  if (!calc || calc.language !== FHIRPATH) return undefined;
  const resource = { resourceType: 'QuestionnaireResponse', status: 'completed', item: structuredClone(items) };
  const env: Record<string, unknown> = { resource, questionnaire: structuredClone(q) };
  scoringByEnv.set(env, { q, byLinkId: indexItems(q) });
  try {
    for (const owner of [q, ...target.ancestors, target.item]) {
      for (const v of expressionsOf(owner.extension, VARIABLE_URL)) {
        if (v.language !== FHIRPATH || !v.name) continue;
        env[v.name] = compiled(v.expression)(resource, env);
      }
    }
    const result = compiled(calc.expression)(resource, env);
    if (!Array.isArray(result) || result.length !== 1) return undefined;
    const value: unknown = isObject(result[0]) ? result[0].value : result[0];
    return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

function indexItems(q: Questionnaire): Map<string, QuestionnaireItem> {
  const out = new Map<string, QuestionnaireItem>();
  const walk = (items: unknown) => {
    for (const it of Array.isArray(items) ? items : []) {
      if (!isObject(it) || typeof it.linkId !== 'string') continue;
      out.set(it.linkId, it as QuestionnaireItem);
      walk(it.item);
    }
  };
  walk(q.item);
  return out;
}

/**
 * The weight of one FHIRPath node: a response answer or its value (weighed through its item), or
 * an answerOption / option value of the Questionnaire itself (its own extension).
 */
function nodeWeight({ q, byLinkId }: Scoring, n: Node): number | undefined {
  const data = fhirpath.util.valData(n) as unknown;
  let answer: unknown;
  let owner: Node | null | undefined;
  if (n.path === 'QuestionnaireResponse.item.answer') {
    answer = data;
    owner = n.parentResNode;
  } else if (n.parentResNode?.path === 'QuestionnaireResponse.item.answer') {
    answer = fhirpath.util.valData(n.parentResNode);
    owner = n.parentResNode.parentResNode;
  } else if (n.path === 'Questionnaire.item.answerOption') {
    return isObject(data) ? weightFromExtensions(data.extension) : undefined;
  } else if (n.parentResNode?.path === 'Questionnaire.item.answerOption') {
    const option: unknown = fhirpath.util.valData(n.parentResNode);
    return isObject(option) ? weightFromExtensions(option.extension) : undefined;
  }
  const ownerData: unknown = owner ? fhirpath.util.valData(owner) : undefined;
  const item = isObject(ownerData) && typeof ownerData.linkId === 'string' ? byLinkId.get(ownerData.linkId) : undefined;
  return item && isObject(answer) ? answerWeight(q, item, answer as ResponseAnswer) : undefined;
}
