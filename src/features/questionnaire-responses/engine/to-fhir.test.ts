// toFhirQuestionnaireResponse output is checked against the FHIR R4 model shipped with
// fhirpath.js (element names, types, cardinality) plus the primitive formats and invariants a
// validator enforces (qrs-1, ext-1, one value[x], no empty arrays or strings).
import r4 from 'fhirpath/fhir-context/r4';
import { describe, expect, it } from 'vitest';
import type { ResponseItem } from '../../questionnaires/fhir-types.js';
import {
  isFhirCode, isFhirDate, isFhirDateTime, isFhirDecimal, isFhirId, isFhirInteger, isFhirString, isFhirTime, isFhirUri,
} from './fhir-primitives.js';
import { scoreResponse } from './score.js';
import { withServerScore } from './score-item.js';
import { questionnaire, responseItems } from './test-fixtures.js';
import { SCORE_EXTENSION_URL, toFhirQuestionnaireResponse, type ToFhirInput } from './to-fhir.js';

const model = r4 as unknown as {
  path2Type: Record<string, string>;
  path2Repeating: Record<string, boolean>;
  pathsDefinedElsewhere: Record<string, string>;
};

const PRIMITIVES: Record<string, (v: unknown) => boolean> = {
  'System.String': isFhirString, string: isFhirString, code: isFhirCode, uri: isFhirUri, canonical: isFhirUri,
  dateTime: isFhirDateTime, date: isFhirDate, time: isFhirTime, decimal: isFhirDecimal, integer: isFhirInteger,
  boolean: (v) => typeof v === 'boolean', unsignedInt: (v) => isFhirInteger(v) && v >= 0, base64Binary: isFhirString,
};

/** Problems a FHIR R4 validator would report on this JSON, as "path: problem". */
function fhirProblems(node: Record<string, unknown>, path: string, out: string[] = []): string[] {
  const valueKeys = Object.keys(node).filter((k) => k.startsWith('value'));
  if (valueKeys.length > 1) out.push(`${path}: several value[x]`);
  if (path === 'Extension' && (valueKeys.length > 0) === Array.isArray(node.extension)) out.push(`${path}: ext-1`);
  if (path === 'QuestionnaireResponse.item' && node.item && node.answer) out.push(`${path}: qrs-1`);
  for (const [key, value] of Object.entries(node)) {
    if (path === 'QuestionnaireResponse' && key === 'resourceType') continue;
    const child = `${path}.${key}`;
    // Recursive elements (item.item, answer.item) are "defined elsewhere" (at item).
    const elsewhere = model.pathsDefinedElsewhere[child];
    const type = elsewhere ? 'BackboneElement' : model.path2Type[child];
    if (!type) {
      out.push(`${child}: not a FHIR element`);
      continue;
    }
    const repeating = model.path2Repeating[elsewhere ?? child] === true;
    if (repeating !== Array.isArray(value)) out.push(`${child}: wrong cardinality`);
    const values = Array.isArray(value) ? value : [value];
    if (values.length === 0) out.push(`${child}: empty array`);
    for (const v of values) {
      if (PRIMITIVES[type]) {
        if (!PRIMITIVES[type]!(v)) out.push(`${child}: invalid ${type}`);
      } else if (typeof v !== 'object' || v === null) {
        out.push(`${child}: expected ${type}`);
      } else {
        const next = type === 'BackboneElement' || type === 'Element' ? elsewhere ?? child : type;
        fhirProblems(v as Record<string, unknown>, next, out);
      }
    }
  }
  return out;
}

const base: ToFhirInput = {
  id: '0192f3c4-7b1e-7c3a-9f00-123456789abc',
  questionnaire: 'http://hl7.org/fhir/uv/sdc/Questionnaire/54127-6|2015',
  status: 'completed',
  patientId: '0192f3c4-0000-7000-8000-000000000001',
  authored: '2024-04-04T18:41:13.730Z',
  items: [],
};

describe('toFhirQuestionnaireResponse', () => {
  it('emits the resource header FHIR requires', () => {
    const r = toFhirQuestionnaireResponse({ ...base, authored: new Date('2024-04-04T18:41:13.730Z') });
    expect(r).toEqual({
      resourceType: 'QuestionnaireResponse',
      id: base.id,
      questionnaire: base.questionnaire,
      status: 'completed',
      subject: { reference: `Patient/${base.patientId}` },
      authored: '2024-04-04T18:41:13.730Z',
    });
    expect(fhirProblems(r as unknown as Record<string, unknown>, 'QuestionnaireResponse')).toEqual([]);
  });

  it.each([
    ['in the USSG response (repeating groups, answers with nested items)', 'ussg-fht-sdc.questionnaireresponse.json'],
    ['in the PHQ-9 embedded-scores response', 'phq9-lhcforms.questionnaireresponse-embedded-scores.json'],
    ['in the scoring-edge-cases response (_valueInteger extensions)', 'scoring-edge-cases.questionnaireresponse.json'],
  ])('serializes the items %s as valid FHIR', (_label, file) => {
    const r = toFhirQuestionnaireResponse({ ...base, items: responseItems(file) });
    expect(fhirProblems(r as unknown as Record<string, unknown>, 'QuestionnaireResponse')).toEqual([]);
  });

  it('keeps the USSG item tree intact', () => {
    const items = responseItems('ussg-fht-sdc.questionnaireresponse.json');
    const r = toFhirQuestionnaireResponse({ ...base, status: 'in-progress', items });
    expect(r.item).toEqual(items); // that response holds only FHIR elements, none of them extensions
  });

  it('drops non-FHIR fields, client extensions (including weights), empty arrays and empty strings', () => {
    const items = [
      {
        linkId: 'a', text: '', score: 7, answer: [
          { valueCoding: { code: 'x', display: 'X', extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/ordinalValue', valueDecimal: 9 }], weight: 9 } },
        ],
      },
      { linkId: 'b', answer: [], item: [] },
      { linkId: 'c', answer: [{ valueInteger: 1, _valueInteger: { extension: [{ url: 'http://x', valueDecimal: 1 }] } }] },
    ] as unknown as ResponseItem[];
    const r = toFhirQuestionnaireResponse({ ...base, items });
    expect(r.item).toEqual([
      { linkId: 'a', answer: [{ valueCoding: { code: 'x', display: 'X' } }] },
      { linkId: 'b' },
      { linkId: 'c', answer: [{ valueInteger: 1 }] },
    ]);
    expect(fhirProblems(r as unknown as Record<string, unknown>, 'QuestionnaireResponse')).toEqual([]);
  });

  it('carries the server score: in the total item (withServerScore) and as the score extension', () => {
    const q = questionnaire('phq9-lhcforms.questionnaire.json');
    const items = responseItems('phq9-lhcforms.questionnaireresponse-embedded-scores.json');
    const score = scoreResponse(q, items);
    const r = toFhirQuestionnaireResponse({ ...base, items: withServerScore(q, items, score), score });
    expect(r.extension).toEqual([{
      url: SCORE_EXTENSION_URL,
      extension: [{ url: 'total', valueDecimal: 15 }, { url: 'band', valueString: 'moderately severe' }],
    }]);
    expect(r.item!.find((i) => i.linkId === '/44261-6')!.answer).toEqual([{ valueDecimal: 15 }]);
    expect(fhirProblems(r as unknown as Record<string, unknown>, 'QuestionnaireResponse')).toEqual([]);
  });

  it('omits the band when the instrument has none', () => {
    const r = toFhirQuestionnaireResponse({ ...base, score: { total: 8, band: null } });
    expect(r.extension).toEqual([{ url: SCORE_EXTENSION_URL, extension: [{ url: 'total', valueDecimal: 8 }] }]);
  });

  it('accepts a relative Questionnaire reference and a partial authored date', () => {
    const r = toFhirQuestionnaireResponse({ ...base, questionnaire: 'Questionnaire/phq9', authored: '2008-01-17', status: 'amended' });
    expect(fhirProblems(r as unknown as Record<string, unknown>, 'QuestionnaireResponse')).toEqual([]);
  });

  it.each([
    [{ id: 'has space' }, 'id is not a FHIR id'],
    [{ patientId: 'x'.repeat(65) }, 'patientId is not a FHIR id'],
    [{ questionnaire: '' }, 'questionnaire must be a canonical URL or reference'],
    [{ status: 'draft' }, 'status must be in-progress, completed or amended'],
    [{ authored: '2024-04-04T18:41:13' }, 'authored is not a FHIR dateTime'],
  ])('refuses invalid metadata %j', (patch, message) => {
    expect(() => toFhirQuestionnaireResponse({ ...base, ...(patch as Partial<ToFhirInput>) })).toThrow(message);
  });

  it('the checker itself catches what a validator would', () => {
    const bad = { id: 'x', status: 'completed', foo: 1, item: [{ linkId: 'a', item: [{ linkId: 'b' }], answer: [{ valueString: '' }] }] };
    expect(fhirProblems(bad, 'QuestionnaireResponse')).toEqual([
      'QuestionnaireResponse.foo: not a FHIR element',
      'QuestionnaireResponse.item: qrs-1',
      'QuestionnaireResponse.item.answer.valueString: invalid string',
    ]);
    expect(isFhirId('x')).toBe(true);
  });
});
