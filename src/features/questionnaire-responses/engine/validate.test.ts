// One failing case (and the matching passing case) per validation rule, on small inline
// questionnaires. Paths are JSON Pointers rooted at the items array (`/item/...`).
import { describe, expect, it } from 'vitest';
import type { Questionnaire, QuestionnaireItem, ResponseItem } from '../../questionnaires/fhir-types.js';
import { validateResponse } from './validate.js';

const form = (item: QuestionnaireItem[], extra: Partial<Questionnaire> = {}): Questionnaire =>
  ({ resourceType: 'Questionnaire', status: 'active', item, ...extra });

const LOINC = 'http://loinc.org';
const yesNo = [
  { valueCoding: { system: LOINC, code: 'LA33-6', display: 'Yes' } },
  { valueCoding: { system: LOINC, code: 'LA32-8', display: 'No' } },
];

const q = form([
  { linkId: 'name', type: 'string', maxLength: 5 },
  { linkId: 'smoker', type: 'choice', answerOption: yesNo, required: true },
  { linkId: 'weight', type: 'decimal' },
  { linkId: 'visits', type: 'integer' },
  { linkId: 'seen', type: 'boolean' },
  { linkId: 'born', type: 'date' },
  { linkId: 'when', type: 'dateTime' },
  { linkId: 'at', type: 'time' },
  { linkId: 'notes', type: 'text' },
  { linkId: 'height', type: 'quantity' },
  { linkId: 'drinks', type: 'open-choice', answerOption: [{ valueString: 'beer' }, { valueString: 'wine' }] },
  { linkId: 'intro', type: 'display', text: 'Please answer' },
  { linkId: 'meds', type: 'choice', repeats: true, answerOption: [{ valueCoding: { code: 'a' } }, { valueCoding: { code: 'b' } }] },
  { linkId: 'score', type: 'integer', readOnly: true },
  {
    linkId: 'contact', type: 'group', item: [
      { linkId: 'contact.phone', type: 'string' },
    ],
  },
]);

const smokerNo: ResponseItem = { linkId: 'smoker', answer: [{ valueCoding: { system: LOINC, code: 'LA32-8' } }] };
const check = (items: ResponseItem[], mode: 'draft' | 'submit' = 'draft') => validateResponse(q, items, mode);

describe('validateResponse — linkIds and structure', () => {
  it('accepts a valid response', () => {
    expect(check([
      { linkId: 'name', answer: [{ valueString: 'Ann' }] },
      smokerNo,
      { linkId: 'weight', answer: [{ valueDecimal: 61.5 }] },
      { linkId: 'visits', answer: [{ valueInteger: 3 }] },
      { linkId: 'seen', answer: [{ valueBoolean: false }] },
      { linkId: 'born', answer: [{ valueDate: '1980-02' }] },
      { linkId: 'when', answer: [{ valueDateTime: '2024-04-04T18:41:13.730Z' }] },
      { linkId: 'at', answer: [{ valueTime: '08:30:00' }] },
      { linkId: 'height', answer: [{ valueQuantity: { value: 170, unit: 'cm', system: 'http://unitsofmeasure.org', code: 'cm' } }] },
      { linkId: 'drinks', answer: [{ valueString: 'cider' }] },
      { linkId: 'meds', answer: [{ valueCoding: { code: 'a' } }, { valueCoding: { code: 'b' } }] },
      { linkId: 'score', answer: [{ valueInteger: 7 }] },
      { linkId: 'contact', item: [{ linkId: 'contact.phone', answer: [{ valueString: '555' }] }] },
    ], 'submit')).toEqual([]);
  });

  it('reports an unknown linkId with a pointer to it', () => {
    expect(check([{ linkId: 'nope', answer: [{ valueString: 'x' }] }])).toEqual([
      { path: '/item/0/linkId', message: 'Unknown linkId "nope": the questionnaire has no such item' },
    ]);
  });

  it('reports an item outside its group, and a group child at the top level', () => {
    const errors = check([{ linkId: 'contact.phone', answer: [{ valueString: '555' }] }]);
    expect(errors).toEqual([{ path: '/item/0/linkId', message: 'Item "contact.phone" belongs under item "contact", not at the top level' }]);
  });

  it('reports a missing linkId, non-object items and unknown properties', () => {
    const errors = check([{ answer: [] } as unknown as ResponseItem, 42 as unknown as ResponseItem, { linkId: 'name', score: 3 }]);
    expect(errors).toEqual([
      { path: '/item/0/linkId', message: 'linkId is required' },
      { path: '/item/1', message: 'An item must be an object' },
      { path: '/item/2/score', message: 'Unknown property "score"' },
    ]);
  });

  it('rejects modifier extensions (their meaning cannot be ignored)', () => {
    const errors = check([{ linkId: 'name', modifierExtension: [{ url: 'http://x' }], answer: [{ valueString: 'Ann' }] }]);
    expect(errors).toEqual([{ path: '/item/0/modifierExtension', message: 'Modifier extensions are not supported' }]);
  });

  it('reports items out of questionnaire order', () => {
    const errors = check([{ linkId: 'weight', answer: [{ valueDecimal: 1 }] }, { linkId: 'name', answer: [{ valueString: 'A' }] }]);
    expect(errors).toEqual([{ path: '/item/1', message: 'Item "name" is out of order: items follow the questionnaire\'s order' }]);
  });

  it('reports a non-repeating item given twice', () => {
    const errors = check([{ linkId: 'name', answer: [{ valueString: 'A' }] }, { linkId: 'name', answer: [{ valueString: 'B' }] }]);
    expect(errors).toEqual([{
      path: '/item/1',
      message: 'Item "name" may appear only once here; a repeating question keeps all its answers in one item',
    }]);
  });

  it('reports two answers on a non-repeating question, accepts them on a repeating one', () => {
    expect(check([{ linkId: 'name', answer: [{ valueString: 'A' }, { valueString: 'B' }] }])).toEqual([
      { path: '/item/0/answer/1', message: 'Item "name" does not repeat: it takes one answer' },
    ]);
    expect(check([{ linkId: 'meds', answer: [{ valueCoding: { code: 'a' } }, { valueCoding: { code: 'b' } }] }])).toEqual([]);
  });

  it('reports answers on group and display items', () => {
    const errors = check([
      { linkId: 'intro', answer: [{ valueString: 'x' }] },
      { linkId: 'contact', answer: [{ valueString: 'x' }] },
    ]);
    expect(errors).toEqual([
      { path: '/item/0/answer', message: 'Display item "intro" cannot have answers' },
      { path: '/item/1/answer', message: 'Group item "contact" cannot have answers' },
    ]);
  });

  it('reports children of a question put under item instead of answer.item', () => {
    const nested = form([{ linkId: 'q', type: 'boolean', item: [{ linkId: 'q.why', type: 'string' }] }]);
    expect(validateResponse(nested, [{ linkId: 'q', answer: [{ valueBoolean: true }], item: [{ linkId: 'q.why' }] }], 'draft')).toEqual([
      { path: '/item/0/item', message: 'Items nested under question "q" belong under one of its answers (answer[].item)' },
    ]);
    expect(validateResponse(nested, [
      { linkId: 'q', answer: [{ valueBoolean: true, item: [{ linkId: 'q.why', answer: [{ valueString: 'because' }] }] }] },
    ], 'draft')).toEqual([]);
  });

  it('accepts an answer to a readOnly item', () => {
    expect(check([{ linkId: 'score', answer: [{ valueInteger: 99 }] }])).toEqual([]);
  });

  it('honours basePath for transports that keep items elsewhere', () => {
    expect(validateResponse(q, [{ linkId: 'nope' }], 'draft', { basePath: '/items' })[0]?.path).toBe('/items/0/linkId');
  });
});

describe('validateResponse — answer types', () => {
  const one = (linkId: string, answer: Record<string, unknown>) => check([{ linkId, answer: [answer] }]);

  it.each([
    ['seen', { valueString: 'true' }, '/item/0/answer/0/valueString', 'Item "seen" is of type boolean; its answers use valueBoolean'],
    ['weight', { valueInteger: 60 }, '/item/0/answer/0/valueInteger', 'Item "weight" is of type decimal; its answers use valueDecimal'],
    ['visits', { valueInteger: 2.5 }, '/item/0/answer/0/valueInteger', 'valueInteger must be a whole number (32-bit)'],
    ['visits', { valueInteger: 2 ** 31 }, '/item/0/answer/0/valueInteger', 'valueInteger must be a whole number (32-bit)'],
    ['born', { valueDate: '1980-02-30' }, '/item/0/answer/0/valueDate', 'valueDate must be a FHIR date: YYYY, YYYY-MM or YYYY-MM-DD'],
    ['born', { valueDateTime: '1980-02-03' }, '/item/0/answer/0/valueDateTime', 'Item "born" is of type date; its answers use valueDate'],
    ['when', { valueDateTime: '2024-04-04T18:41:13' }, '/item/0/answer/0/valueDateTime',
      'valueDateTime must be a FHIR dateTime: YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss with a time zone'],
    ['at', { valueTime: '8:30' }, '/item/0/answer/0/valueTime', 'valueTime must be a FHIR time: hh:mm:ss'],
    ['notes', { valueString: '' }, '/item/0/answer/0/valueString', 'valueString must be a non-empty string without control characters'],
    ['notes', { valueString: 'a\u0000b' }, '/item/0/answer/0/valueString', 'valueString must be a non-empty string without control characters'],
    ['height', { valueQuantity: { unit: 'cm' } }, '/item/0/answer/0/valueQuantity/value', 'A quantity answer needs a numeric value'],
    ['smoker', { valueString: 'No' }, '/item/0/answer/0/valueString', 'Answers to "smoker" use valueCoding'],
  ])('%s: rejects %j', (linkId, answer, path, message) => {
    expect(one(linkId, answer)).toEqual([{ path, message }]);
  });

  it('accepts partial dates and dateTimes as FHIR allows', () => {
    expect(one('born', { valueDate: '1980' })).toEqual([]);
    expect(one('when', { valueDateTime: '2024-04' })).toEqual([]);
    expect(one('when', { valueDateTime: '2024-02-29T23:59:60+14:00' })).toEqual([]);
  });

  it('reports an answer with two values, or none', () => {
    expect(one('weight', { valueDecimal: 1, valueInteger: 1 })).toEqual([
      { path: '/item/0/answer/0', message: 'An answer carries one value[x]; found valueDecimal, valueInteger' },
    ]);
    expect(one('weight', {})).toEqual([{ path: '/item/0/answer/0', message: 'An answer needs a value[x]' }]);
  });

  it('enforces maxLength in characters, not bytes', () => {
    expect(one('name', { valueString: 'Zoë🙂' })).toEqual([]);
    expect(one('name', { valueString: 'Annabel' })).toEqual([
      { path: '/item/0/answer/0/valueString', message: 'Answer to "name" is longer than its maxLength of 5 characters' },
    ]);
  });

  it('never echoes the answer value in a message', () => {
    const secret = 'Jane-Doe-1970-01-01';
    const errors = check([{ linkId: 'name', answer: [{ valueString: secret }] }, { linkId: 'smoker', answer: [{ valueCoding: { code: secret } }] }]);
    expect(errors.length).toBe(2);
    expect(JSON.stringify(errors)).not.toContain(secret);
  });
});

describe('validateResponse — options and value sets', () => {
  const one = (linkId: string, answer: Record<string, unknown>, questionnaire = q) =>
    validateResponse(questionnaire, [{ linkId, answer: [answer] }], 'draft');

  it('rejects a coding that is not an option', () => {
    expect(one('smoker', { valueCoding: { system: LOINC, code: 'LA9999-9' } })).toEqual([
      { path: '/item/0/answer/0/valueCoding', message: 'Answer to "smoker" is not one of its allowed options' },
    ]);
  });

  it('matches by system and code; a coding without system matches by code alone', () => {
    expect(one('smoker', { valueCoding: { code: 'LA32-8', display: 'Nope' } })).toEqual([]);
    expect(one('smoker', { valueCoding: { system: 'http://snomed.info/sct', code: 'LA32-8' } })).toHaveLength(1);
  });

  it('rejects codes with surrounding or doubled whitespace (not valid FHIR codes) and other case', () => {
    expect(one('smoker', { valueCoding: { system: LOINC, code: ' LA32-8' } })).toEqual([
      { path: '/item/0/answer/0/valueCoding/code', message: 'code must be a FHIR code: no leading, trailing or repeated whitespace' },
    ]);
    expect(one('smoker', { valueCoding: { system: LOINC, code: 'la32-8' } })).toHaveLength(1);
  });

  it('open-choice takes an option or free text, but not an unknown coding', () => {
    expect(one('drinks', { valueString: 'wine' })).toEqual([]);
    expect(one('drinks', { valueString: 'mead' })).toEqual([]);
    expect(one('drinks', { valueCoding: { code: 'mead' } })).toEqual([
      { path: '/item/0/answer/0/valueCoding', message: 'Answers to "drinks" use valueString' },
    ]);
  });

  const vsForm = form([{ linkId: 'freq', type: 'choice', answerValueSet: '#freq' }], {
    contained: [
      {
        resourceType: 'ValueSet', id: 'freq', compose: {
          include: [{ system: 'http://example.org/cs', concept: [{ code: 'Not at all' }, { code: 'More than half the days' }] }],
        },
      },
      { resourceType: 'CodeSystem', url: 'http://example.org/ci', caseSensitive: false, concept: [{ code: 'Abc' }] },
    ],
  });

  it('checks codings against a contained ValueSet; codes with inner spaces are valid', () => {
    expect(one('freq', { valueCoding: { code: 'More than half the days' } }, vsForm)).toEqual([]);
    expect(one('freq', { valueCoding: { system: 'http://example.org/cs', code: 'Not at all' } }, vsForm)).toEqual([]);
    expect(one('freq', { valueCoding: { code: 'Sometimes' } }, vsForm)).toEqual([
      { path: '/item/0/answer/0/valueCoding', message: 'Answer to "freq" is not one of its allowed options' },
    ]);
    expect(one('freq', { valueCoding: { code: 'More than  half the days' } }, vsForm)).toHaveLength(1);
  });

  it('compares case-insensitively only when the CodeSystem says so', () => {
    const ci = form([{ linkId: 'x', type: 'choice', answerOption: [{ valueCoding: { system: 'http://example.org/ci', code: 'Abc' } }] }], {
      contained: vsForm.contained,
    });
    expect(one('x', { valueCoding: { system: 'http://example.org/ci', code: 'ABC' } }, ci)).toEqual([]);
  });

  it('cannot refute membership of a value set it cannot resolve (external, no terminology server)', () => {
    const external = form([{ linkId: 'x', type: 'choice', answerValueSet: 'http://example.org/ValueSet/elsewhere' }]);
    expect(one('x', { valueCoding: { system: 'http://example.org', code: 'anything' } }, external)).toEqual([]);
    expect(one('x', { valueString: 'anything' }, external)).toEqual([
      { path: '/item/0/answer/0/valueString', message: 'Answers to "x" use valueCoding' },
    ]);
  });

  it('matches integer, date and string options by kind', () => {
    const kinds = form([
      { linkId: 'i', type: 'choice', answerOption: [{ valueInteger: 1 }, { valueInteger: 2 }] },
      { linkId: 'd', type: 'choice', answerOption: [{ valueDate: '2024-01-01' }] },
    ]);
    expect(one('i', { valueInteger: 2 }, kinds)).toEqual([]);
    expect(one('i', { valueInteger: 3 }, kinds)).toHaveLength(1);
    expect(one('d', { valueDate: '2024-01-01' }, kinds)).toEqual([]);
    expect(one('d', { valueCoding: { code: '2024-01-01' } }, kinds)).toEqual([
      { path: '/item/0/answer/0/valueCoding', message: 'Answers to "d" use valueDate' },
    ]);
  });

  it('checks quantity units against unitOption', () => {
    const unitForm = form([{
      linkId: 'h', type: 'quantity', extension: [
        { url: 'http://hl7.org/fhir/StructureDefinition/questionnaire-unitOption', valueCoding: { system: 'http://unitsofmeasure.org', code: 'cm' } },
      ],
    }]);
    expect(one('h', { valueQuantity: { value: 170, system: 'http://unitsofmeasure.org', code: 'cm' } }, unitForm)).toEqual([]);
    expect(one('h', { valueQuantity: { value: 67, system: 'http://unitsofmeasure.org', code: '[in_i]' } }, unitForm)).toEqual([
      { path: '/item/0/answer/0/valueQuantity', message: 'The unit of the answer to "h" is not one of its unitOptions' },
    ]);
  });
});

describe('validateResponse — submit mode', () => {
  it('reports a required item without answer; a draft may omit it', () => {
    expect(check([], 'submit')).toEqual([{ path: '/item', message: 'Required item "smoker" has no answer' }]);
    expect(check([{ linkId: 'smoker' }], 'submit')).toEqual([{ path: '/item', message: 'Required item "smoker" has no answer' }]);
    expect(check([], 'draft')).toEqual([]);
  });

  it('a required group needs an answered descendant; an absent optional group is not checked', () => {
    const groups = form([
      { linkId: 'g', type: 'group', required: true, item: [{ linkId: 'g.a', type: 'string' }] },
      { linkId: 'h', type: 'group', item: [{ linkId: 'h.a', type: 'string', required: true }] },
    ]);
    expect(validateResponse(groups, [{ linkId: 'g', item: [{ linkId: 'g.a' }] }], 'submit')).toEqual([
      { path: '/item', message: 'Required group "g" needs at least one answer' },
    ]);
    const gOk: ResponseItem = { linkId: 'g', item: [{ linkId: 'g.a', answer: [{ valueString: 'x' }] }] };
    expect(validateResponse(groups, [gOk], 'submit')).toEqual([]);
    // Once group h is present, its required child is required.
    expect(validateResponse(groups, [gOk, { linkId: 'h', item: [] }], 'submit')).toEqual([
      { path: '/item/1/item', message: 'Required item "h.a" has no answer' },
    ]);
  });

  it('requires required items in every repetition of a repeating group', () => {
    const rep = form([{ linkId: 'm', type: 'group', repeats: true, item: [{ linkId: 'm.name', type: 'string', required: true }] }]);
    const errors = validateResponse(rep, [
      { linkId: 'm', item: [{ linkId: 'm.name', answer: [{ valueString: 'a' }] }] },
      { linkId: 'm', item: [] },
    ], 'submit');
    expect(errors).toEqual([{ path: '/item/1/item', message: 'Required item "m.name" has no answer' }]);
  });

  it('does not require a calculated item (the server computes it)', () => {
    const calc = form([{
      linkId: 'total', type: 'decimal', required: true,
      extension: [{ url: 'http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression', valueExpression: { language: 'text/fhirpath', expression: '1' } }],
    }]);
    expect(validateResponse(calc, [], 'submit')).toEqual([]);
  });
});
