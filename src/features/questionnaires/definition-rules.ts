// Whether a Questionnaire definition is one Carebase can serve: its JSON shape (the schema) and the
// rules between its parts that a schema cannot say (the FHIR R4 invariants que-1 … que-12 we rely
// on, and the subset of the item model we support). Pure: it takes the resource and returns every
// problem with a JSON pointer, so one 400 lists them all. The rules walk defensively, because
// they run on resources whose shape is already known to be wrong in places.
import type { ErrorObject } from 'ajv';
import type { ErrorDetail } from '../../errors.js';
import { formatErrors, strictAjv } from '../../platform/validation.js';
import type { ValueSet } from './fhir-types.js';
import { QuestionnaireResource } from './questionnaires.schema.js';

export interface DefinitionOptions {
  /** answerValueSet canonicals outside the resource that are accepted: all, or those listed. */
  externalValueSets: 'any' | ReadonlySet<string>;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const objs = (v: unknown): [Obj, number][] => arr(v).flatMap((x, i): [Obj, number][] => (isObj(x) ? [[x, i]] : []));
/** A JSON pointer segment (RFC 6901). */
const seg = (k: string | number) => String(k).replace(/~/g, '~0').replace(/\//g, '~1');
/** "a group item", "an integer item". */
const anItem = (type: unknown) => `${/^[aeiou]/i.test(String(type)) ? 'an' : 'a'} ${String(type)} item`;

const MAX_ITEM_DEPTH = 20;
const MAX_JSON_DEPTH = 64;
const WEIGHT_EXTENSIONS = new Set(['http://hl7.org/fhir/StructureDefinition/ordinalValue', 'http://hl7.org/fhir/StructureDefinition/itemWeight']);
const OPTION_KEYS = ['valueCoding', 'valueString', 'valueInteger', 'valueDate'] as const;
const OPTION_ANSWER: Record<string, string> = { valueCoding: 'answerCoding', valueString: 'answerString', valueInteger: 'answerInteger', valueDate: 'answerDate' };
/** Item types that may restrict their answers with answerOption, and the option values each takes. */
const OPTION_TYPES: Record<string, readonly string[]> = { choice: OPTION_KEYS, 'open-choice': OPTION_KEYS, integer: ['valueInteger'], date: ['valueDate'], string: ['valueString'] };
const TYPE_ANSWER: Record<string, string> = {
  boolean: 'answerBoolean', decimal: 'answerDecimal', integer: 'answerInteger', date: 'answerDate', dateTime: 'answerDateTime',
  time: 'answerTime', string: 'answerString', text: 'answerString', quantity: 'answerQuantity',
};
const ANSWER_KEYS = new Set(Object.values(TYPE_ANSWER).concat('answerCoding'));
const ORDERED_ANSWERS = new Set(['answerDecimal', 'answerInteger', 'answerDate', 'answerDateTime', 'answerTime', 'answerQuantity']);
const MAX_LENGTH_TYPES = new Set(['string', 'text', 'open-choice']);
const NO_ANSWER_TYPES = new Set(['group', 'display']);

/** Every problem of a Questionnaire resource, shape and rules together, without repeats. */
export function definitionProblems(resource: unknown, opts: DefinitionOptions): ErrorDetail[] {
  if (isObj(resource) && resource.resourceType !== 'Questionnaire') {
    return [{ path: '/resourceType', message: 'must be Questionnaire (or a Bundle holding one)' }];
  }
  // Checked first: the schema validator and the rules recurse, and must never meet an unbounded tree.
  if (nestsDeeperThan(resource, MAX_JSON_DEPTH)) return [{ path: '/', message: `nests deeper than ${MAX_JSON_DEPTH} levels` }];
  const problems = [...shapeProblems(resource), ...primitiveProblems(resource, '')];
  if (isObj(resource)) problems.push(...ruleProblems(resource, opts));
  const seen = new Set<string>();
  return problems.filter((p) => !seen.has(`${p.path}\u0000${p.message}`) && !!seen.add(`${p.path}\u0000${p.message}`));
}

let validateShape: ReturnType<typeof strictAjv.compile> | undefined;

function shapeProblems(resource: unknown): ErrorDetail[] {
  validateShape ??= strictAjv.compile(QuestionnaireResource);
  if (validateShape(resource)) return [];
  // Say which values an enum allows (item types, statuses, operators) instead of "one of the allowed values".
  const errors = (validateShape.errors ?? []).map((e: ErrorObject) =>
    e.keyword === 'enum' ? { ...e, message: `must be one of: ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}` } : e,
  );
  return formatErrors(errors);
}

/** True when a JSON value nests deeper than max (stops looking there, so it never recurses further). */
export function nestsDeeperThan(v: unknown, max: number): boolean {
  if (typeof v !== 'object' || v === null) return false;
  if (max === 0) return true;
  return (Array.isArray(v) ? v : Object.values(v)).some((x) => nestsDeeperThan(x, max - 1));
}

/**
 * FHIR strings hold no control characters but tab and line breaks; PostgreSQL's jsonb also refuses
 * NUL and unpaired surrogates, and JSON overflows (1e999) would come back as null.
 */
function primitiveProblems(v: unknown, path: string): ErrorDetail[] {
  if (typeof v === 'string') return badText(v) ? [{ path, message: 'contains control characters or unpaired surrogates' }] : [];
  if (typeof v === 'number') return Number.isFinite(v) ? [] : [{ path, message: 'is not a finite number' }];
  if (Array.isArray(v)) return v.flatMap((x, i) => primitiveProblems(x, `${path}/${i}`));
  if (!isObj(v)) return [];
  return Object.entries(v).flatMap(([k, x]) => {
    const p = `${path}/${seg(k)}`;
    return badText(k) ? [{ path: p, message: 'has a property name with control characters' }] : primitiveProblems(x, p);
  });
}

const BAD_TEXT = /[\u0000-\u0008\u000B\u000C\u000E-\u001F]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const badText = (s: string) => BAD_TEXT.test(s);

interface Node {
  item: Obj;
  path: string;
}

function ruleProblems(q: Obj, opts: DefinitionOptions): ErrorDetail[] {
  const problems: ErrorDetail[] = [];
  const nodes: Node[] = [];
  collect(q.item, '', 1, nodes, problems);

  const byLinkId = new Map<string, Node>();
  for (const n of nodes) {
    if (typeof n.item.linkId !== 'string') continue;
    const first = byLinkId.get(n.item.linkId);
    if (first) problems.push({ path: `${n.path}/linkId`, message: `repeats the linkId of ${first.path}` });
    else byLinkId.set(n.item.linkId, n);
  }

  const containedIds = new Set<string>();
  for (const [r, i] of objs(q.contained)) {
    if (typeof r.id !== 'string') continue;
    if (containedIds.has(r.id)) problems.push({ path: `/contained/${i}/id`, message: 'repeats the id of another contained resource' });
    containedIds.add(r.id);
  }

  if (q.status === 'active' && nodes.length === 0) problems.push({ path: '/item', message: 'an active questionnaire needs at least one item' });
  for (const n of nodes) problems.push(...itemProblems(n, byLinkId, q, opts));
  problems.push(...enableWhenCycles(nodes, byLinkId));
  return problems;
}

function collect(items: unknown, parent: string, depth: number, out: Node[], problems: ErrorDetail[]): void {
  for (const [item, i] of objs(items)) {
    const path = `${parent}/item/${i}`;
    if (depth > MAX_ITEM_DEPTH) {
      problems.push({ path, message: `items nest deeper than ${MAX_ITEM_DEPTH} levels` });
      continue;
    }
    out.push({ item, path });
    collect(item.item, path, depth + 1, out, problems);
  }
}

function itemProblems(n: Node, byLinkId: Map<string, Node>, q: Obj, opts: DefinitionOptions): ErrorDetail[] {
  const { item, path } = n;
  const type = String(item.type);
  const out: ErrorDetail[] = [];
  const add = (at: string, message: string) => out.push({ path: `${path}${at}`, message });
  const children = arr(item.item);

  if (type === 'group' && children.length === 0) add('/item', 'a group needs at least one child item');
  if (type === 'display') {
    for (const k of ['required', 'repeats', 'readOnly']) if (item[k] === true) add(`/${k}`, 'is not allowed on a display item');
    if (children.length > 0) add('/item', 'a display item cannot have child items');
  }
  if (NO_ANSWER_TYPES.has(type) && item.initial !== undefined) add('/initial', `${anItem(type)} takes no answer`);
  if (item.maxLength !== undefined && !MAX_LENGTH_TYPES.has(type)) add('/maxLength', 'only string, text and open-choice items take maxLength');

  const hasOptions = Array.isArray(item.answerOption);
  const hasValueSet = typeof item.answerValueSet === 'string';
  if ((type === 'choice' || type === 'open-choice') && !hasOptions && !hasValueSet) add('/answerOption', `${anItem(type)} needs answerOption or answerValueSet`);
  if (hasOptions && hasValueSet) add('/answerValueSet', 'cannot be combined with answerOption');
  if (hasValueSet && type !== 'choice' && type !== 'open-choice') add('/answerValueSet', 'only choice and open-choice items take answerValueSet');
  else if (hasValueSet) {
    const problem = valueSetProblem(q, item.answerValueSet as string, opts);
    if (problem) add('/answerValueSet', problem);
  }
  if (hasOptions) out.push(...optionProblems(item, path, OPTION_TYPES[type]));

  for (const [ew, j] of objs(item.enableWhen)) out.push(...conditionProblems(ew, `${path}/enableWhen/${j}`, byLinkId));
  if (arr(item.enableWhen).length > 1 && item.enableBehavior === undefined) add('/enableBehavior', 'is required (all or any) when there is more than one enableWhen');
  return out;
}

function optionProblems(item: Obj, path: string, allowed: readonly string[] | undefined): ErrorDetail[] {
  const out: ErrorDetail[] = [];
  if (!allowed) return [{ path: `${path}/answerOption`, message: `${anItem(item.type)} cannot restrict its answers with answerOption` }];
  const seen = new Set<string>();
  for (const [o, k] of objs(item.answerOption)) {
    const p = `${path}/answerOption/${k}`;
    const keys = Object.keys(o).filter((key) => key.startsWith('value'));
    for (const key of keys) if (!(OPTION_KEYS as readonly string[]).includes(key)) out.push({ path: `${p}/${seg(key)}`, message: 'is not a supported option value (valueCoding, valueString, valueInteger or valueDate)' });
    const supported = keys.filter((key) => (OPTION_KEYS as readonly string[]).includes(key));
    if (supported.length !== 1) out.push({ path: p, message: 'needs exactly one of valueCoding, valueString, valueInteger or valueDate' });
    else if (!allowed.includes(supported[0]!)) out.push({ path: `${p}/${supported[0]}`, message: `does not fit ${anItem(item.type)} (use ${allowed.join(' or ')})` });
    else {
      const v = o[supported[0]!];
      const id = `${supported[0]}:${isObj(v) ? `${String(v.system ?? '')}|${String(v.code)}` : String(v)}`;
      if (seen.has(id)) out.push({ path: p, message: 'repeats an earlier option' });
      seen.add(id);
    }
    const coding = isObj(o.valueCoding) ? o.valueCoding : {};
    for (const [at, exts] of [[p, o.extension], [`${p}/valueCoding`, coding.extension]] as const) {
      for (const [e, x] of objs(exts)) {
        if (WEIGHT_EXTENSIONS.has(String(e.url)) && typeof e.valueDecimal !== 'number') {
          out.push({ path: `${at}/extension/${x}/valueDecimal`, message: 'an ordinalValue or itemWeight extension needs a numeric valueDecimal' });
        }
      }
    }
  }
  return out;
}

function conditionProblems(ew: Obj, p: string, byLinkId: Map<string, Node>): ErrorDetail[] {
  const out: ErrorDetail[] = [];
  const unsupported = Object.keys(ew).filter((k) => k.startsWith('answer') && !ANSWER_KEYS.has(k));
  for (const k of unsupported) out.push({ path: `${p}/${seg(k)}`, message: 'is not a supported answer type' });
  const answerKeys = Object.keys(ew).filter((k) => ANSWER_KEYS.has(k));
  const target = typeof ew.question === 'string' ? byLinkId.get(ew.question)?.item : undefined;
  if (typeof ew.question === 'string' && !target) out.push({ path: `${p}/question`, message: 'refers to no item of this questionnaire' });
  if (target && NO_ANSWER_TYPES.has(String(target.type))) out.push({ path: `${p}/question`, message: `refers to ${anItem(target.type)}, which has no answer` });

  if (ew.operator === 'exists') {
    if (answerKeys.length !== 1 || answerKeys[0] !== 'answerBoolean') {
      out.push({ path: `${p}/${seg(answerKeys.find((k) => k !== 'answerBoolean') ?? 'answerBoolean')}`, message: 'operator exists takes answerBoolean (true: answered, false: not answered)' });
    }
    return out;
  }
  if (answerKeys.length === 0) return unsupported.length > 0 ? out : [...out, { path: p, message: 'needs one answer[x] to compare with' }];
  if (answerKeys.length > 1) return [...out, { path: `${p}/${seg(answerKeys[1]!)}`, message: 'only one answer[x] is allowed' }];
  const key = answerKeys[0]!;
  if (target && !NO_ANSWER_TYPES.has(String(target.type))) {
    const kinds = answerKinds(target);
    if (kinds.size > 0 && !kinds.has(key)) out.push({ path: `${p}/${seg(key)}`, message: `does not match the type of the item it refers to, ${anItem(target.type)} (use ${[...kinds].join(' or ')})` });
  }
  if (typeof ew.operator === 'string' && /[<>]/.test(ew.operator) && !ORDERED_ANSWERS.has(key)) {
    out.push({ path: `${p}/operator`, message: `${ew.operator} compares numbers, dates, times and quantities only` });
  }
  return out;
}

/** The answer[x] an enableWhen may compare an item's answer with. */
function answerKinds(target: Obj): Set<string> {
  const type = String(target.type);
  if (type !== 'choice' && type !== 'open-choice') return new Set(TYPE_ANSWER[type] ? [TYPE_ANSWER[type]] : []);
  const kinds = new Set<string>();
  for (const [o] of objs(target.answerOption)) for (const k of OPTION_KEYS) if (o[k] !== undefined) kinds.add(OPTION_ANSWER[k]!);
  if (target.answerValueSet !== undefined) kinds.add('answerCoding');
  if (type === 'open-choice') kinds.add('answerString');
  return kinds;
}

function valueSetProblem(q: Obj, ref: string, opts: DefinitionOptions): string | undefined {
  if (ref.startsWith('#')) {
    const r = objs(q.contained).find(([c]) => c.id === ref.slice(1))?.[0];
    if (!r) return 'refers to no contained resource';
    if (r.resourceType !== 'ValueSet') return `refers to a contained ${String(r.resourceType)}, not a ValueSet`;
    return listsCodes(r) ? undefined : 'refers to a ValueSet that lists no codes (compose.include.concept or expansion.contains)';
  }
  if (containedValueSet(q as never, ref)) return undefined;
  if (opts.externalValueSets === 'any' || opts.externalValueSets.has(ref)) return undefined;
  return 'is not a contained ValueSet: import the questionnaire in a Bundle with this ValueSet (it is then contained), or create it with ?allowExternalValueSets=true';
}

const listsCodes = (vs: Obj) =>
  objs(isObj(vs.compose) ? vs.compose.include : undefined).some(([inc]) => arr(inc.concept).length > 0) ||
  arr(isObj(vs.expansion) ? vs.expansion.contains : undefined).length > 0;

/**
 * The contained ValueSet an answerValueSet names: `#id`, or the canonical URL (optionally
 * `|version`) of a contained ValueSet. Undefined for a value set outside the resource.
 */
export function containedValueSet(q: { contained?: unknown[] }, ref: string): ValueSet | undefined {
  const [url, version] = ref.split('|');
  const match = (r: Obj) =>
    ref.startsWith('#') ? r.id === ref.slice(1) : r.url === url && (version === undefined || r.version === version);
  return objs(q.contained).find(([r]) => r.resourceType === 'ValueSet' && match(r))?.[0] as ValueSet | undefined;
}

/** enableWhen chains that lead back to where they started (a → b → a): never decidable. */
function enableWhenCycles(nodes: Node[], byLinkId: Map<string, Node>): ErrorDetail[] {
  const deps = (n: Node) => objs(n.item.enableWhen).flatMap(([ew]) => (typeof ew.question === 'string' && byLinkId.has(ew.question) ? [byLinkId.get(ew.question)!] : []));
  const done = new Set<Node>();
  const stack: Node[] = [];
  const out: ErrorDetail[] = [];
  const visit = (n: Node): void => {
    stack.push(n);
    for (const d of deps(n)) {
      if (stack.includes(d)) {
        const loop = [...stack.slice(stack.indexOf(d)), d].map((x) => String(x.item.linkId)).join(' → ');
        out.push({ path: `${n.path}/enableWhen`, message: `depends on itself through enableWhen (${loop})` });
      } else if (!done.has(d)) visit(d);
    }
    stack.pop();
    done.add(n);
  };
  for (const n of nodes) if (!done.has(n)) visit(n);
  return out;
}
