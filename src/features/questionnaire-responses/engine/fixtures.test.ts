// Validation of the real-world fixtures (read unchanged from /work/shared/fixtures), and of
// constructed responses for the fixture questionnaires that ship without one (GAD-7, Apgar).
import { describe, expect, it } from 'vitest';
import { apgarItems, gad7Items, questionnaire, responseItems, ussgQuestionnaire } from './test-fixtures.js';
import { validateResponse } from './validate.js';

const PHQ9 = 'phq9-lhcforms.questionnaire.json';

describe('PHQ-9 (LHC-Forms)', () => {
  it('the completed response is valid for submission, including its (ignored) client total', () => {
    expect(validateResponse(questionnaire(PHQ9), responseItems('phq9-lhcforms.questionnaireresponse.json'), 'submit')).toEqual([]);
  });
  it('the embedded-scores variant is valid too: an extension on a coding is legal FHIR', () => {
    expect(validateResponse(questionnaire(PHQ9), responseItems('phq9-lhcforms.questionnaireresponse-embedded-scores.json'), 'submit')).toEqual([]);
  });
  it('the eight required items must be answered before submitting', () => {
    // /44250-9 … /44253-3 are required; /44260-8, /44261-6 and /69722-7 are not.
    const errors = validateResponse(questionnaire(PHQ9), [], 'submit');
    expect(errors.map((e) => e.message)).toEqual(
      ['/44250-9', '/44255-8', '/44259-0', '/44254-1', '/44251-7', '/44258-2', '/44252-5', '/44253-3']
        .map((id) => `Required item "${id}" has no answer`),
    );
    expect(validateResponse(questionnaire(PHQ9), [], 'draft')).toEqual([]);
  });
});

describe('PHQ-9 (SDC example): codings without system, codes with spaces', () => {
  const q = questionnaire('phq9-sdc.questionnaire.json');
  const items = responseItems('phq9-sdc.questionnaireresponse.json');

  it('is valid: system-less codings match the contained ValueSet by code; inner spaces are legal in codes', () => {
    expect(validateResponse(q, items, 'submit')).toEqual([]);
  });
  it('a code with a trailing space is not a FHIR code and is rejected', () => {
    const broken = structuredClone(items);
    broken[0]!.item![4]!.answer = [{ valueCoding: { code: 'More than half the days ' } }];
    expect(validateResponse(q, broken, 'submit')).toEqual([
      { path: '/item/0/item/4/answer/0/valueCoding/code', message: 'code must be a FHIR code: no leading, trailing or repeated whitespace' },
    ]);
  });
  it('a code from outside the value set is rejected, and so is the right code in another system', () => {
    const broken = structuredClone(items);
    broken[0]!.item![0]!.answer = [{ valueCoding: { code: 'Sometimes' } }];
    broken[0]!.item![1]!.answer = [{ valueCoding: { system: 'http://loinc.org', code: 'Not-at-all' } }];
    expect(validateResponse(q, broken, 'submit')).toEqual([
      { path: '/item/0/item/0/answer/0/valueCoding', message: 'Answer to "H1/T1/Q1" is not one of its allowed options' },
      { path: '/item/0/item/1/answer/0/valueCoding', message: 'Answer to "H1/T1/Q2" is not one of its allowed options' },
    ]);
  });
});

describe('scoring edge cases (fhirpath.js weight() fixture)', () => {
  it('is structurally valid: nested groups, options of every kind, unresolvable value sets', () => {
    const q = questionnaire('scoring-edge-cases.questionnaire.json');
    const items = responseItems('scoring-edge-cases.questionnaireresponse.json');
    expect(validateResponse(q, items, 'draft')).toEqual([]);
    expect(validateResponse(q, items, 'submit')).toEqual([]);
  });
});

describe('US Surgeon General family health portrait (repeating groups + enableWhen)', () => {
  const q = ussgQuestionnaire();
  const items = responseItems('ussg-fht-sdc.questionnaireresponse.json');

  it('the real response validates in submit mode', () => {
    expect(validateResponse(q, items, 'submit')).toEqual([]);
  });

  it('evaluates enableWhen per family member: breaking one repetition reports only that one', () => {
    // Claire (top-level item 11) has disease "Other/Unexpected" (LA10589-2), which enables the
    // free-text 2.1.1.4.1.1.1 nested under that answer. Change her disease: the free text becomes
    // an answer to a disabled item — in her repetition only; others keep "Other" and stay valid.
    const broken = structuredClone(items);
    const disease = broken[11]!.item![0]!.item![3]!.answer![0]!.item![0]!.item![0]!;
    expect(disease.linkId).toBe('2.1.1.4.1.1');
    disease.answer![0]!.valueCoding = { system: 'http://loinc.org', code: 'LA10537-1', display: 'Colon Cancer' };
    expect(validateResponse(q, broken, 'submit')).toEqual([{
      path: '/item/11/item/0/item/3/answer/0/item/0/item/0/answer/0/item/0',
      message: 'Item "2.1.1.4.1.1.1" is disabled (its enableWhen conditions are not met) and must not be answered',
    }]);
  });

  it('a required item nested under an answer becomes due when its condition holds', () => {
    // Gender "Other" (LA46-8) enables the required 1.1.2.1.1 under that answer.
    const broken = structuredClone(items);
    const gender = broken[1]!.item![0]!.item![1]!;
    expect(gender.linkId).toBe('1.1.2');
    gender.answer = [{ valueCoding: { system: 'http://loinc.org', code: 'LA46-8', display: 'Other' } }];
    expect(validateResponse(q, broken, 'submit')).toEqual([
      { path: '/item/1/item/0/item/1/answer/0/item', message: 'Required item "1.1.2.1.1" has no answer' },
    ]);
    expect(validateResponse(q, broken, 'draft')).toEqual([]);
  });

  it('rejects a family-member item outside its repetition group', () => {
    const broken = structuredClone(items);
    broken[2]!.item!.push({ linkId: '1.1.1', answer: [{ valueString: 'x' }] });
    expect(validateResponse(q, broken, 'draft')).toEqual([
      { path: '/item/2/item/1/linkId', message: 'Item "1.1.1" belongs under item "1.1", not under "2"' },
    ]);
  });
});

describe('GAD-7 (constructed response)', () => {
  const q = questionnaire('gad7-lhcforms.questionnaire.json');
  it('is valid, with system-less codings as LHC-Forms writes them', () => {
    expect(validateResponse(q, gad7Items(), 'submit')).toEqual([]);
  });
  it('rejects LA6570-1 on /68509-9, whose "2" option is LA18938-3 in this form', () => {
    const items = gad7Items();
    items[1] = { linkId: '/68509-9', answer: [{ valueCoding: { code: 'LA6570-1' } }] };
    expect(validateResponse(q, items, 'draft')).toEqual([
      { path: '/item/1/answer/0/valueCoding', message: 'Answer to "/68509-9" is not one of its allowed options' },
    ]);
  });
});

describe('Apgar (itemWeight, constructed response)', () => {
  it('is valid', () => {
    const q = questionnaire('apgar-itemweight-lhcforms.questionnaire.json');
    expect(validateResponse(q, apgarItems({ '32406-1': 'LA6723-6', '32407-9': 'LA6718-6' }), 'submit')).toEqual([]);
  });
});
