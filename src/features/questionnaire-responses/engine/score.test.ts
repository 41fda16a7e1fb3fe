// Scores of the fixtures, each computed by hand (arithmetic in the comments), plus the rules:
// questionnaire weights win over client-sent ones, client totals are replaced, FHIRPath totals
// are used when the form defines one.
import { describe, expect, it } from 'vitest';
import type { CodeSystem, Questionnaire, QuestionnaireItem, ResponseItem, ValueSet } from '../../questionnaires/fhir-types.js';
import { bandFor, detectInstrument } from './instruments.js';
import { scoreResponse } from './score.js';
import { findScoreItem, withServerScore } from './score-item.js';
import { apgarItems, fixture, gad7Items, questionnaire, responseItems, ussgQuestionnaire } from './test-fixtures.js';

const CALC = 'http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression';
const phq9 = () => questionnaire('phq9-lhcforms.questionnaire.json');

describe('PHQ-9 (LHC-Forms, ordinalValue on answerOption, FHIRPath total)', () => {
  it('scores the completed response 15, moderately severe', () => {
    // /44250-9 Several days 1 + /44255-8 More than half 2 + /44259-0 Nearly every day 3
    // + /44254-1 Several days 1 + /44251-7 More than half 2 + /44258-2 Nearly every day 3
    // + /44252-5 Not at all 0 + /44253-3 Several days 1 + /44260-8 More than half 2 = 15 → 15–19.
    expect(scoreResponse(phq9(), responseItems('phq9-lhcforms.questionnaireresponse.json'))).toEqual({ total: 15, band: 'moderately severe' });
  });

  it('the embedded-scores variant still scores 15: the questionnaire weight wins', () => {
    // The response claims /44250-9 weighs 2 (questionnaire: 1) and /44251-7 weighs 3
    // (questionnaire: 2). SDC weight() would take the embedded values and give 15 + 1 + 1 = 17;
    // the server never takes weights from the client, so the total stays 15.
    expect(scoreResponse(phq9(), responseItems('phq9-lhcforms.questionnaireresponse-embedded-scores.json')))
      .toEqual({ total: 15, band: 'moderately severe' });
  });

  it('uses the FHIRPath calculatedExpression (with its variables) when the form defines one', () => {
    // Same weights, but the form's own expression says "q1 counted 10 times": 10 × 1 = 10.
    const q = phq9();
    const total = q.item!.find((i) => i.linkId === '/44261-6')!;
    total.extension!.find((e) => e.url === CALC)!.valueExpression!.expression = '%q1_value * 10';
    expect(scoreResponse(q, responseItems('phq9-lhcforms.questionnaireresponse.json'))).toEqual({ total: 10, band: 'moderate' });
  });

  it('falls back to summing weights when the expression cannot be evaluated', () => {
    const q = phq9();
    const total = q.item!.find((i) => i.linkId === '/44261-6')!;
    total.extension!.find((e) => e.url === CALC)!.valueExpression!.expression = '%undefinedVariable + (';
    expect(scoreResponse(q, responseItems('phq9-lhcforms.questionnaireresponse.json'))?.total).toBe(15);
  });

  it('a partly answered form scores what is answered', () => {
    // Only /44250-9 (1) and /44259-0 (3): 1 + 3 = 4 → minimal.
    const items = responseItems('phq9-lhcforms.questionnaireresponse.json').filter((i) => ['/44250-9', '/44259-0'].includes(i.linkId));
    expect(scoreResponse(phq9(), items)).toEqual({ total: 4, band: 'minimal' });
  });
});

describe('PHQ-9 (SDC example, weights in a contained ValueSet)', () => {
  const q = questionnaire('phq9-sdc.questionnaire.json');
  const items = responseItems('phq9-sdc.questionnaireresponse.json');

  it('scores 10, moderate, not the 13 stored in the response', () => {
    // Q1 Not-at-all 0 + Q2 0 + Q3 0 + Q4 Several-days 1 + Q5 More than half the days 2
    // + Q6 Several-days 1 + Q7 Nearly every day 3 + Q8 More than half the days 2 + Q9 Several-days 1
    // = 10 → 10–14 moderate. Codings have no system; they match the ValueSet's CSPHQ9 concepts by
    // code. The form's `answers().sum(value.ordinal())` uses functions fhirpath.js does not
    // define (answers(), sum with an argument), so the weights are summed directly.
    expect(scoreResponse(q, items)).toEqual({ total: 10, band: 'moderate' });
  });

  it('runs ordinal() inside a FHIRPath total with the questionnaire weights, not the client\'s', () => {
    // An expression fhirpath.js can run over the same answers: 10 + 100 = 110 (only the FHIRPath
    // path can add the 100). The client's ordinalValue 50 on Q1 (questionnaire: 0) is ignored;
    // taking it would give 160. 110 is outside PHQ-9's 0–27, so no band.
    const variant = structuredClone(q);
    variant.item![0]!.item![9]!.extension![0]!.valueExpression!.expression = '%resource.repeat(item).answer.value.ordinal().sum() + 100';
    const claimed = structuredClone(items);
    claimed[0]!.item![0]!.answer![0]!.valueCoding!.extension = [{ url: 'http://hl7.org/fhir/StructureDefinition/ordinalValue', valueDecimal: 50 }];
    expect(scoreResponse(variant, claimed)).toEqual({ total: 110, band: null });
  });

  it('scores the same with the weights in a contained CodeSystem (itemWeight property)', () => {
    // As the current SDC source defines PHQ-9: the CodeSystem carries the weights, the ValueSet
    // only lists codes. Built from the vendored CSPHQ9 plus weights 0–3 in concept order.
    const cs = fixture<CodeSystem>('phq9-sdc.codesystem.json');
    delete cs.text;
    cs.property = [{ code: 'itemWeight', uri: 'http://hl7.org/fhir/concept-properties#itemWeight', type: 'decimal' }];
    cs.concept!.forEach((c, i) => Object.assign(c, { property: [{ code: 'itemWeight', valueDecimal: i }] }));
    const variant = structuredClone(q);
    const vs = variant.contained![0] as ValueSet;
    for (const c of vs.compose!.include[0]!.concept!) delete c.extension;
    variant.contained!.push(cs);
    expect(scoreResponse(variant, items)).toEqual({ total: 10, band: 'moderate' });
  });
});

describe('GAD-7 (CQL total, so weights are summed)', () => {
  const q = questionnaire('gad7-lhcforms.questionnaire.json');
  it('scores the constructed response 12, moderate, ignoring the client total', () => {
    // 1 + 2 + 3 + 0 + 1 + 2 + 3 = 12 → 10–14 moderate. The client claimed 3.
    expect(scoreResponse(q, gad7Items(3))).toEqual({ total: 12, band: 'moderate' });
  });
  it('an answer that is not an option of its item adds nothing', () => {
    // LA6570-1 is not among /68509-9's options (its "2" is LA18938-3): 12 − 2 = 10.
    const items = gad7Items();
    items[1] = { linkId: '/68509-9', answer: [{ valueCoding: { code: 'LA6570-1' } }] };
    expect(scoreResponse(q, items)).toEqual({ total: 10, band: 'moderate' });
  });
});

describe('Apgar (itemWeight, FHIRPath total only when complete)', () => {
  const q = questionnaire('apgar-itemweight-lhcforms.questionnaire.json');
  it('scores 8 through the form expression', () => {
    // colour LA6723-6 1 + heart rate LA6718-6 2 + reflex LA6721-0 2 + tone LA6714-5 1 + breathing LA6727-7 2 = 8.
    const items = apgarItems({ '32406-1': 'LA6723-6', '32407-9': 'LA6718-6', '32409-5': 'LA6721-0', '32408-7': 'LA6714-5', '32410-3': 'LA6727-7' });
    expect(scoreResponse(q, items)).toEqual({ total: 8, band: null });
  });
  it('an incomplete form (expression gives {}) falls back to the sum of what is answered', () => {
    // 1 + 2 = 3; the readOnly client total 10 is ignored.
    const items = [...apgarItems({ '32406-1': 'LA6723-6', '32407-9': 'LA6718-6' }), { linkId: '9272-6', answer: [{ valueDecimal: 10 }] }];
    expect(scoreResponse(q, items)).toEqual({ total: 3, band: null });
  });
});

describe('scoring edge cases (weight() fixture)', () => {
  it('takes every weight from the questionnaire, none from the response', () => {
    // link-1.1.1 contained VS some-code-1            2   (the response's embedded 1 is ignored)
    // link-1.1.2 contained VS some-code-2           10
    // link-1.1.3 coding answerOption               200
    // link-1.1.4 string answerOption              2000
    // link-1.1.5 Questionnaire-contained CodeSystem 30000 (its value set is not resolvable)
    // link-1.1.6 CodeSystem contained in the *response*: untrusted, 0 (fhirpath.js: 400000)
    // link-1.1.7 integer answerOption         70000000   (the response's _valueInteger 60000000 is ignored)
    // link-1.1.8 integer answerOption          5000000
    // 2 + 10 + 200 + 2000 + 30000 + 0 + 70000000 + 5000000 = 75032212 (no known instrument: no band)
    const q = questionnaire('scoring-edge-cases.questionnaire.json');
    expect(scoreResponse(q, responseItems('scoring-edge-cases.questionnaireresponse.json'))).toEqual({ total: 75032212, band: null });
  });
});

describe('scoreResponse — other rules', () => {
  it('returns null for a questionnaire without weights', () => {
    expect(scoreResponse(ussgQuestionnaire(), responseItems('ussg-fht-sdc.questionnaireresponse.json'))).toBeNull();
  });

  const weighted = (extra: Partial<QuestionnaireItem> = {}): Questionnaire => ({
    resourceType: 'Questionnaire', status: 'active',
    item: [
      { linkId: 'a', type: 'choice', answerOption: [0.1, 0.2].map((w, i) => ({ valueCoding: { code: `c${i}` }, extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/itemWeight', valueDecimal: w }] })), repeats: true, ...extra },
    ],
  });

  it('sums every answer of a repeating item and rounds away binary noise', () => {
    // 0.1 + 0.2 = 0.3 (not 0.30000000000000004)
    expect(scoreResponse(weighted(), [{ linkId: 'a', answer: [{ valueCoding: { code: 'c0' } }, { valueCoding: { code: 'c1' } }] }])?.total).toBe(0.3);
  });

  it('ignores answers to readOnly items', () => {
    expect(scoreResponse(weighted({ readOnly: true }), [{ linkId: 'a', answer: [{ valueCoding: { code: 'c1' } }] }])?.total).toBe(0);
  });

  it('ignores a weight extension the client puts on the answer itself', () => {
    const items: ResponseItem[] = [{ linkId: 'a', answer: [{ valueCoding: { code: 'c0' }, extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/ordinalValue', valueDecimal: 99 }] }] }];
    expect(scoreResponse(weighted(), items)?.total).toBe(0.1);
  });
});

describe('instrument bands', () => {
  it.each([[0, 'minimal'], [4, 'minimal'], [5, 'mild'], [9, 'mild'], [10, 'moderate'], [14, 'moderate'],
    [15, 'moderately severe'], [19, 'moderately severe'], [20, 'severe'], [27, 'severe'], [28, null], [-1, null]] as const)(
    'PHQ-9 %d → %s', (total, band) => expect(bandFor(phq9(), total)).toBe(band));

  it.each([[0, 'minimal'], [4, 'minimal'], [5, 'mild'], [9, 'mild'], [10, 'moderate'], [14, 'moderate'],
    [15, 'severe'], [21, 'severe'], [22, null]] as const)(
    'GAD-7 %d → %s', (total, band) => expect(bandFor(questionnaire('gad7-lhcforms.questionnaire.json'), total)).toBe(band));

  it('recognises PHQ-9 by LOINC code, by linkIds alone, by url; GAD-7 by its system-less code; others not', () => {
    expect(detectInstrument(phq9())?.name).toBe('PHQ-9');
    const bare = phq9();
    delete bare.code; delete bare.identifier; bare.name = 'x'; bare.title = 'x';
    bare.item = bare.item!.map(({ code: _code, ...rest }) => rest);
    expect(detectInstrument(bare)?.name).toBe('PHQ-9'); // the nine "/LOINC" linkIds
    expect(detectInstrument(questionnaire('phq9-sdc.questionnaire.json'))?.name).toBe('PHQ-9');
    expect(detectInstrument(questionnaire('gad7-lhcforms.questionnaire.json'))?.name).toBe('GAD-7');
    expect(detectInstrument(questionnaire('apgar-itemweight-lhcforms.questionnaire.json'))).toBeNull();
    expect(detectInstrument(ussgQuestionnaire())).toBeNull();
  });
});

describe('withServerScore', () => {
  it('replaces the client total with the server total', () => {
    const items = responseItems('phq9-lhcforms.questionnaireresponse-embedded-scores.json');
    items[9]!.answer = [{ valueDecimal: 27 }];
    const out = withServerScore(phq9(), items, { total: 15 });
    expect(out[9]).toMatchObject({ linkId: '/44261-6', answer: [{ valueDecimal: 15 }] });
    expect(items[9]!.answer).toEqual([{ valueDecimal: 27 }]); // input untouched
  });

  it('inserts a missing total item at its questionnaire position', () => {
    const items = responseItems('phq9-lhcforms.questionnaireresponse.json').filter((i) => i.linkId !== '/44261-6');
    const out = withServerScore(phq9(), items, { total: 15 });
    expect(out.map((i) => i.linkId).slice(8)).toEqual(['/44260-8', '/44261-6', '/69722-7']);
  });

  it('writes a quantity total inside its group (SDC PHQ-9 "H1/TS")', () => {
    const q = questionnaire('phq9-sdc.questionnaire.json');
    const out = withServerScore(q, responseItems('phq9-sdc.questionnaireresponse.json'), { total: 10 });
    expect(out[0]!.item![9]).toMatchObject({ linkId: 'H1/TS', answer: [{ valueQuantity: { value: 10 } }] });
  });

  it('finds the score item of each fixture form', () => {
    expect(findScoreItem(phq9())?.item.linkId).toBe('/44261-6');
    expect(findScoreItem(questionnaire('phq9-sdc.questionnaire.json'))?.item.linkId).toBe('H1/TS');
    expect(findScoreItem(questionnaire('gad7-lhcforms.questionnaire.json'))?.item.linkId).toBe('/70274-6');
    expect(findScoreItem(questionnaire('apgar-itemweight-lhcforms.questionnaire.json'))?.item.linkId).toBe('9272-6');
    expect(findScoreItem(ussgQuestionnaire())).toBeNull();
  });

  it('leaves items alone when there is no score', () => {
    const items = responseItems('ussg-fht-sdc.questionnaireresponse.json');
    expect(withServerScore(ussgQuestionnaire(), items, null)).toEqual(items);
  });
});
