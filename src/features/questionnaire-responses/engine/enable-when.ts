// enableWhen evaluation over a parsed response tree (R4 Questionnaire.item.enableWhen).
//
// Which answers does `enableWhen.question` refer to when the question occurs more than once
// (repeating groups)? The nearest one: search the item's own context (its group instance, or the
// question it is nested under), and only if the question is not there, the enclosing context,
// outward to the root. So a condition inside the 3rd repetition of a group reads the answer given
// in that 3rd repetition. Answers of disabled items do not count (R4: "the logic should proceed
// as though the item is not valued"), which cascades.
//
// Operators, for the answers A found (FHIR: any answer may satisfy the condition):
//   exists  — (A is non-empty) == answerBoolean
//   =       — some answer equals the value
//   !=      — A is non-empty and no answer equals the value (a question nobody answered does not
//             enable "!=" items, as in the HL7 Java validator; R5 clarifies "no answer equals")
//   > < >= <= — some answer compares so; numbers, dates/times, strings and same-unit quantities
//             compare, anything else (codings, booleans, mixed types) does not.
// enableBehavior: 'any' or 'all'; when several conditions omit it (invalid per que-12) we take
// 'all', as the Java validator does.

import type {
  Coding, EnableWhen, Questionnaire, QuestionnaireItem, Quantity, ResponseAnswer, ResponseItem,
} from '../../questionnaires/fhir-types.js';
import { answerValueOf, isObject, type AnswerValue } from './answers.js';
import { compareTemporal } from './fhir-primitives.js';
import { codingMatches } from './terminology.js';

/** One item instance of the response, with its place in the tree. The root has item null. */
export interface ResponseNode {
  item: QuestionnaireItem | null;
  data: ResponseItem | null;
  pointer: string;
  parent: ResponseNode | null;
  /** Items nested in a group instance. */
  children: ResponseNode[];
  /** Answers of a question, each with the items nested under it. */
  answers: { data: ResponseAnswer; pointer: string; children: ResponseNode[] }[];
}

const ANSWER_KEYS = [
  'answerBoolean', 'answerDecimal', 'answerInteger', 'answerDate', 'answerDateTime', 'answerTime',
  'answerString', 'answerCoding', 'answerQuantity',
] as const;

export class Enablement {
  private readonly memo = new Map<ResponseNode, boolean>();
  private readonly inProgress = new Set<ResponseNode>();

  constructor(private readonly q: Questionnaire) {}

  /** Is `item` enabled when it sits in `context` (the root, a group instance or a question)? */
  isEnabled(item: QuestionnaireItem, context: ResponseNode): boolean {
    const conditions = Array.isArray(item.enableWhen) ? item.enableWhen.filter(isObject) : [];
    if (conditions.length === 0) return true;
    const results = conditions.map((c) => this.condition(c, context));
    return item.enableBehavior === 'any' ? results.some(Boolean) : results.every(Boolean);
  }

  /** An instance is enabled when it and every ancestor is. */
  isInstanceEnabled(node: ResponseNode): boolean {
    if (!node.item || !node.parent) return true;
    const known = this.memo.get(node);
    if (known !== undefined) return known;
    // A cycle of conditions (A depends on B depends on A) is a questionnaire defect; inside the
    // cycle the referenced question counts as unanswered rather than recursing forever.
    if (this.inProgress.has(node)) return false;
    this.inProgress.add(node);
    const enabled = this.isInstanceEnabled(node.parent) && this.isEnabled(node.item, node.parent);
    this.inProgress.delete(node);
    this.memo.set(node, enabled);
    return enabled;
  }

  private condition(c: EnableWhen, context: ResponseNode): boolean {
    const answers = this.answersFor(c.question, context);
    if (c.operator === 'exists') return (answers.length > 0) === (c.answerBoolean !== false);
    const key = ANSWER_KEYS.find((k) => c[k] !== undefined);
    if (!key) return false;
    const expected = { key, value: c[key] };
    const comparisons = answers.map((a) => compare(this.q, a, expected));
    switch (c.operator) {
      case '=': return comparisons.includes(0);
      case '!=': return answers.length > 0 && !comparisons.includes(0);
      case '>': return comparisons.some((r) => r !== undefined && r !== 'ne' && r > 0);
      case '<': return comparisons.some((r) => r !== undefined && r !== 'ne' && r < 0);
      case '>=': return comparisons.some((r) => r !== undefined && r !== 'ne' && r >= 0);
      case '<=': return comparisons.some((r) => r !== undefined && r !== 'ne' && r <= 0);
      default: return false;
    }
  }

  /** The answers of the nearest instances of `linkId`, searching outward from `context`. */
  private answersFor(linkId: string, context: ResponseNode): AnswerValue[] {
    for (let scope: ResponseNode | null = context; scope; scope = scope.parent) {
      const found: ResponseNode[] = [];
      collect(scope, linkId, found);
      if (found.length > 0) {
        return found
          .filter((n) => this.isInstanceEnabled(n))
          .flatMap((n) => n.answers.map((a) => answerValueOf(a.data)))
          .filter((v): v is AnswerValue => v !== undefined);
      }
    }
    return [];
  }
}

function collect(node: ResponseNode, linkId: string, out: ResponseNode[]): void {
  if (node.item?.linkId === linkId) out.push(node);
  for (const child of node.children) collect(child, linkId, out);
  for (const a of node.answers) for (const child of a.children) collect(child, linkId, out);
}

/**
 * Compares an answer with an enableWhen value: a number (<0, 0, >0) when ordered, 'ne' when
 * comparable only for equality and different, undefined when the two cannot be compared.
 */
function compare(q: Questionnaire, a: AnswerValue, e: { key: string; value: unknown }): number | 'ne' | undefined {
  const ev = e.value;
  switch (e.key) {
    case 'answerBoolean':
      return a.key === 'valueBoolean' ? (a.value === ev ? 0 : 'ne') : undefined;
    case 'answerDecimal': case 'answerInteger':
      return (a.key === 'valueDecimal' || a.key === 'valueInteger') && typeof a.value === 'number' && typeof ev === 'number'
        ? Math.sign(a.value - ev) : undefined;
    case 'answerDate': case 'answerDateTime':
      return (a.key === 'valueDate' || a.key === 'valueDateTime') && typeof a.value === 'string' && typeof ev === 'string'
        ? compareTemporal(a.value, ev) : undefined;
    case 'answerTime':
      return a.key === 'valueTime' && typeof a.value === 'string' && typeof ev === 'string' ? compareTemporal(a.value, ev) : undefined;
    case 'answerString':
      if (a.key !== 'valueString' || typeof a.value !== 'string' || typeof ev !== 'string') return undefined;
      return a.value === ev ? 0 : a.value < ev ? -1 : 1;
    case 'answerCoding':
      return a.key === 'valueCoding' && isObject(a.value) && isObject(ev)
        ? (codingMatches(q, ev as Coding, a.value as Coding) ? 0 : 'ne') : undefined;
    case 'answerQuantity':
      return a.key === 'valueQuantity' ? compareQuantity(a.value as Quantity, ev as Quantity) : undefined;
    default:
      return undefined;
  }
}

/** Quantities compare only in the same unit (system+code, or the unit text); no conversion. */
function compareQuantity(a: Quantity, e: Quantity): number | undefined {
  if (!isObject(a) || !isObject(e) || typeof a.value !== 'number' || typeof e.value !== 'number') return undefined;
  const sameUnit = a.code !== undefined || e.code !== undefined
    ? a.code === e.code && (a.system === undefined || e.system === undefined || a.system === e.system)
    : a.unit === e.unit;
  return sameUnit ? Math.sign(a.value - e.value) : undefined;
}
