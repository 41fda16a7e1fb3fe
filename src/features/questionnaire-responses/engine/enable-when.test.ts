// enableWhen in submit mode: every operator, any/all, per-repeat evaluation in repeating groups,
// items nested under the question they depend on, and cascading through disabled questions.
import { describe, expect, it } from 'vitest';
import type { EnableWhen, Questionnaire, QuestionnaireItem, ResponseItem } from '../../questionnaires/fhir-types.js';
import { validateResponse } from './validate.js';

const form = (item: QuestionnaireItem[]): Questionnaire => ({ resourceType: 'Questionnaire', status: 'active', item });

/** A questionnaire with a controlling question of `type` and a required item that depends on it. */
function gated(type: QuestionnaireItem['type'], enableWhen: EnableWhen[], enableBehavior?: 'any' | 'all'): Questionnaire {
  return form([
    { linkId: 'c', type, repeats: true },
    { linkId: 'd', type: 'string', required: true, enableWhen, ...(enableBehavior ? { enableBehavior } : {}) },
  ]);
}

/** Is `d` enabled for these answers to `c`? (required+enabled+missing → error; disabled → none) */
function enabled(q: Questionnaire, cAnswers: Record<string, unknown>[]): boolean {
  const items: ResponseItem[] = cAnswers.length > 0 ? [{ linkId: 'c', answer: cAnswers }] : [];
  const errors = validateResponse(q, items, 'submit');
  return errors.some((e) => e.message === 'Required item "d" has no answer');
}

describe('enableWhen operators', () => {
  it('exists true / false', () => {
    const yes = gated('string', [{ question: 'c', operator: 'exists', answerBoolean: true }]);
    const no = gated('string', [{ question: 'c', operator: 'exists', answerBoolean: false }]);
    expect(enabled(yes, [{ valueString: 'x' }])).toBe(true);
    expect(enabled(yes, [])).toBe(false);
    expect(enabled(no, [])).toBe(true);
    expect(enabled(no, [{ valueString: 'x' }])).toBe(false);
  });

  it('= and != on codings (system-less coding matches by code)', () => {
    const eq = gated('choice', [{ question: 'c', operator: '=', answerCoding: { system: 'http://loinc.org', code: 'LA33-6' } }]);
    const ne = gated('choice', [{ question: 'c', operator: '!=', answerCoding: { system: 'http://loinc.org', code: 'LA33-6' } }]);
    expect(enabled(eq, [{ valueCoding: { code: 'LA33-6' } }])).toBe(true);
    expect(enabled(eq, [{ valueCoding: { system: 'http://loinc.org', code: 'LA32-8' } }])).toBe(false);
    expect(enabled(ne, [{ valueCoding: { code: 'LA32-8' } }])).toBe(true);
    expect(enabled(ne, [{ valueCoding: { code: 'LA33-6' } }])).toBe(false);
    // An unanswered question enables no "!=" item (HL7 validator behaviour).
    expect(enabled(ne, [])).toBe(false);
    // With several answers, "=" needs one equal, "!=" needs none equal.
    expect(enabled(eq, [{ valueCoding: { code: 'LA32-8' } }, { valueCoding: { code: 'LA33-6' } }])).toBe(true);
    expect(enabled(ne, [{ valueCoding: { code: 'LA32-8' } }, { valueCoding: { code: 'LA33-6' } }])).toBe(false);
  });

  it('= on booleans and strings', () => {
    expect(enabled(gated('boolean', [{ question: 'c', operator: '=', answerBoolean: true }]), [{ valueBoolean: true }])).toBe(true);
    expect(enabled(gated('boolean', [{ question: 'c', operator: '=', answerBoolean: true }]), [{ valueBoolean: false }])).toBe(false);
    expect(enabled(gated('string', [{ question: 'c', operator: '=', answerString: 'ok' }]), [{ valueString: 'ok' }])).toBe(true);
    expect(enabled(gated('string', [{ question: 'c', operator: '=', answerString: 'ok' }]), [{ valueString: 'OK' }])).toBe(false);
  });

  it.each([
    ['>', 5, [true, false, false]],
    ['<', 5, [false, false, true]],
    ['>=', 5, [true, true, false]],
    ['<=', 5, [false, true, true]],
  ] as const)('%s on integers (answers 6, 5, 4 vs %d)', (operator, value, expected) => {
    const q = gated('integer', [{ question: 'c', operator, answerInteger: value }]);
    expect([6, 5, 4].map((v) => enabled(q, [{ valueInteger: v }]))).toEqual(expected);
  });

  it('compares decimals with an integer threshold, dates, dateTimes and times', () => {
    expect(enabled(gated('decimal', [{ question: 'c', operator: '>', answerInteger: 30 }]), [{ valueDecimal: 30.5 }])).toBe(true);
    expect(enabled(gated('date', [{ question: 'c', operator: '<', answerDate: '2000-01-01' }]), [{ valueDate: '1999-12-31' }])).toBe(true);
    expect(enabled(gated('date', [{ question: 'c', operator: '>=', answerDate: '2000-01-01' }]), [{ valueDate: '1999-12-31' }])).toBe(false);
    // "2000" vs "2000-06-01": order unknown at different precision → not enabled either way.
    expect(enabled(gated('date', [{ question: 'c', operator: '<', answerDate: '2000-06-01' }]), [{ valueDate: '2000' }])).toBe(false);
    expect(enabled(gated('date', [{ question: 'c', operator: '>', answerDate: '2000-06-01' }]), [{ valueDate: '2000' }])).toBe(false);
    expect(enabled(gated('dateTime', [{ question: 'c', operator: '>', answerDateTime: '2024-01-01T10:00:00Z' }]),
      [{ valueDateTime: '2024-01-01T11:30:00+01:00' }])).toBe(true); // 10:30Z
    expect(enabled(gated('time', [{ question: 'c', operator: '<=', answerTime: '12:00:00' }]), [{ valueTime: '11:59:59.5' }])).toBe(true);
  });

  it('compares quantities only in the same unit', () => {
    const q = gated('quantity', [{ question: 'c', operator: '>', answerQuantity: { value: 100, system: 'http://unitsofmeasure.org', code: 'kg' } }]);
    expect(enabled(q, [{ valueQuantity: { value: 120, system: 'http://unitsofmeasure.org', code: 'kg' } }])).toBe(true);
    expect(enabled(q, [{ valueQuantity: { value: 120, system: 'http://unitsofmeasure.org', code: '[lb_av]' } }])).toBe(false);
  });

  it('a comparison across types never holds', () => {
    expect(enabled(gated('string', [{ question: 'c', operator: '=', answerInteger: 1 }]), [{ valueString: '1' }])).toBe(false);
  });
});

describe('enableBehavior', () => {
  const conditions: EnableWhen[] = [
    { question: 'c', operator: '>', answerInteger: 1 },
    { question: 'c', operator: '<', answerInteger: 3 },
  ];
  it('all: every condition must hold; any: one suffices', () => {
    const all = gated('integer', conditions, 'all');
    const any = gated('integer', conditions, 'any');
    expect(enabled(all, [{ valueInteger: 2 }])).toBe(true);
    expect(enabled(all, [{ valueInteger: 5 }])).toBe(false);
    expect(enabled(any, [{ valueInteger: 5 }])).toBe(true);
  });
  it('several conditions without enableBehavior are read as all', () => {
    expect(enabled(gated('integer', conditions), [{ valueInteger: 5 }])).toBe(false);
  });
});

describe('answers to disabled items', () => {
  const q = form([
    { linkId: 'smoke', type: 'boolean' },
    { linkId: 'packs', type: 'integer', enableWhen: [{ question: 'smoke', operator: '=', answerBoolean: true }] },
  ]);
  it('are errors when submitting, allowed in a draft', () => {
    const items: ResponseItem[] = [
      { linkId: 'smoke', answer: [{ valueBoolean: false }] },
      { linkId: 'packs', answer: [{ valueInteger: 2 }] },
    ];
    expect(validateResponse(q, items, 'submit')).toEqual([
      { path: '/item/1', message: 'Item "packs" is disabled (its enableWhen conditions are not met) and must not be answered' },
    ]);
    expect(validateResponse(q, items, 'draft')).toEqual([]);
  });
  it('an empty disabled item is fine', () => {
    expect(validateResponse(q, [{ linkId: 'smoke', answer: [{ valueBoolean: false }] }, { linkId: 'packs' }], 'submit')).toEqual([]);
  });
  it('a disabled group with answers inside is reported once, at the group', () => {
    const g = form([
      { linkId: 'smoke', type: 'boolean' },
      { linkId: 'detail', type: 'group', enableWhen: [{ question: 'smoke', operator: '=', answerBoolean: true }], item: [{ linkId: 'packs', type: 'integer', required: true }] },
    ]);
    expect(validateResponse(g, [
      { linkId: 'smoke', answer: [{ valueBoolean: false }] },
      { linkId: 'detail', item: [{ linkId: 'packs', answer: [{ valueInteger: 2 }] }] },
    ], 'submit')).toEqual([
      { path: '/item/1', message: 'Item "detail" is disabled (its enableWhen conditions are not met) and must not be answered' },
    ]);
  });
  it('cascades: an item depending on a disabled question is disabled too', () => {
    const chain = form([
      { linkId: 'a', type: 'boolean' },
      { linkId: 'b', type: 'boolean', enableWhen: [{ question: 'a', operator: '=', answerBoolean: true }] },
      { linkId: 'c', type: 'string', required: true, enableWhen: [{ question: 'b', operator: '=', answerBoolean: true }] },
    ]);
    // b's stale answer would enable c, but b itself is disabled, so c is disabled and not required;
    // b's answer is reported.
    expect(validateResponse(chain, [
      { linkId: 'a', answer: [{ valueBoolean: false }] },
      { linkId: 'b', answer: [{ valueBoolean: true }] },
    ], 'submit')).toEqual([
      { path: '/item/1', message: 'Item "b" is disabled (its enableWhen conditions are not met) and must not be answered' },
    ]);
  });
});

describe('enableWhen inside repeating groups is evaluated per repetition', () => {
  // A family-history form: per relative, "cause of death" is asked only if "deceased" is yes.
  const q = form([{
    linkId: 'rel', type: 'group', repeats: true, item: [
      { linkId: 'rel.deceased', type: 'boolean' },
      { linkId: 'rel.cause', type: 'string', required: true, enableWhen: [{ question: 'rel.deceased', operator: '=', answerBoolean: true }] },
    ],
  }]);
  const relative = (deceased: boolean, cause?: string): ResponseItem => ({
    linkId: 'rel',
    item: [
      { linkId: 'rel.deceased', answer: [{ valueBoolean: deceased }] },
      ...(cause ? [{ linkId: 'rel.cause', answer: [{ valueString: cause }] }] : []),
    ],
  });

  it('accepts each repetition deciding for itself', () => {
    expect(validateResponse(q, [relative(true, 'stroke'), relative(false)], 'submit')).toEqual([]);
  });
  it('requires the cause only in the repetition where deceased is yes', () => {
    expect(validateResponse(q, [relative(false), relative(true)], 'submit')).toEqual([
      { path: '/item/1/item', message: 'Required item "rel.cause" has no answer' },
    ]);
  });
  it('rejects a cause in a repetition where deceased is no, even if another repetition says yes', () => {
    expect(validateResponse(q, [relative(true, 'stroke'), relative(false, 'fall')], 'submit')).toEqual([
      { path: '/item/1/item/1', message: 'Item "rel.cause" is disabled (its enableWhen conditions are not met) and must not be answered' },
    ]);
  });

  it('falls back to the enclosing context for a question outside the group', () => {
    const outer = form([
      { linkId: 'any', type: 'boolean' },
      { linkId: 'r', type: 'group', repeats: true, item: [
        { linkId: 'r.x', type: 'string', required: true, enableWhen: [{ question: 'any', operator: '=', answerBoolean: true }] },
      ] },
    ]);
    expect(validateResponse(outer, [{ linkId: 'any', answer: [{ valueBoolean: true }] }, { linkId: 'r', item: [] }], 'submit')).toEqual([
      { path: '/item/1/item', message: 'Required item "r.x" has no answer' },
    ]);
    expect(validateResponse(outer, [{ linkId: 'any', answer: [{ valueBoolean: false }] }, { linkId: 'r', item: [] }], 'submit')).toEqual([]);
  });

  it('handles items nested under the answer of the question they depend on', () => {
    const nested = form([{
      linkId: 'g', type: 'choice', answerOption: [{ valueCoding: { code: 'other' } }, { valueCoding: { code: 'f' } }],
      item: [{ linkId: 'g.other', type: 'string', required: true, enableWhen: [{ question: 'g', operator: '=', answerCoding: { code: 'other' } }] }],
    }]);
    expect(validateResponse(nested, [{ linkId: 'g', answer: [{ valueCoding: { code: 'other' } }] }], 'submit')).toEqual([
      { path: '/item/0/answer/0/item', message: 'Required item "g.other" has no answer' },
    ]);
    expect(validateResponse(nested, [{ linkId: 'g', answer: [{ valueCoding: { code: 'f' } }] }], 'submit')).toEqual([]);
  });
});
