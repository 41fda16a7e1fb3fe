// Severity bands of the instruments we know. A Questionnaire is recognised by what real exports
// carry: the LOINC panel code (with or without system: the GAD-7 fixture omits it), the LOINC code
// of its total-score item, the codes/linkIds of all its questions (LHC-Forms uses "/<LOINC>"
// linkIds), or its url/name/title (the SDC PHQ-9 example has no codes on the form itself).

import type { Questionnaire, QuestionnaireItem } from '../../questionnaires/fhir-types.js';
import { isObject } from './answers.js';

interface Instrument {
  name: string;
  panel: string;
  total: string;
  questions: string[];
  namePattern: RegExp;
  /** Lower bound of each band, ascending; the last band ends at `max`. */
  bands: [number, string][];
  max: number;
}

const INSTRUMENTS: Instrument[] = [
  {
    name: 'PHQ-9', panel: '44249-1', total: '44261-6',
    questions: ['44250-9', '44255-8', '44259-0', '44254-1', '44251-7', '44258-2', '44252-5', '44253-3', '44260-8'],
    namePattern: /\bphq-?9\b/i,
    bands: [[0, 'minimal'], [5, 'mild'], [10, 'moderate'], [15, 'moderately severe'], [20, 'severe']],
    max: 27,
  },
  {
    name: 'GAD-7', panel: '69737-5', total: '70274-6',
    questions: ['69725-0', '68509-9', '69733-4', '69734-2', '69735-9', '69689-8', '69736-7'],
    namePattern: /\bgad-?7\b/i,
    bands: [[0, 'minimal'], [5, 'mild'], [10, 'moderate'], [15, 'severe']],
    max: 21,
  },
];

const LOINC = 'http://loinc.org';

/** LOINC codes in a list of codings (a coding without system is taken at its word). */
function loincCodes(codings: unknown): string[] {
  if (!Array.isArray(codings)) return [];
  return codings
    .filter((c) => isObject(c) && typeof c.code === 'string' && (c.system === undefined || c.system === LOINC))
    .map((c) => (c as { code: string }).code);
}

function itemCodes(items: QuestionnaireItem[] | undefined, out: Set<string>): Set<string> {
  for (const it of Array.isArray(items) ? items : []) {
    if (!isObject(it)) continue;
    for (const code of loincCodes(it.code)) out.add(code);
    if (typeof it.linkId === 'string') out.add(it.linkId.replace(/^\//, ''));
    itemCodes(it.item, out);
  }
  return out;
}

/** The instrument a Questionnaire is, or null when it is none we know. */
export function detectInstrument(q: Questionnaire): Instrument | null {
  const formCodes = new Set([
    ...loincCodes(q.code),
    ...(Array.isArray(q.identifier) ? q.identifier.filter(isObject).map((i) => String(i.value)) : []),
  ]);
  const items = itemCodes(q.item, new Set());
  const names = [q.url, q.name, q.title].filter((s): s is string => typeof s === 'string');
  return INSTRUMENTS.find((ins) =>
    formCodes.has(ins.panel) ||
    items.has(ins.total) ||
    ins.questions.every((c) => items.has(c)) ||
    names.some((n) => ins.namePattern.test(n))) ?? null;
}

/** The severity band of a total, or null for unknown instruments and impossible totals. */
export function bandFor(q: Questionnaire, total: number): string | null {
  const ins = detectInstrument(q);
  if (!ins || !(total >= 0 && total <= ins.max)) return null;
  let band: string | null = null;
  for (const [from, label] of ins.bands) if (total >= from) band = label;
  return band;
}
