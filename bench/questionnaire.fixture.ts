// A PHQ-9-shaped questionnaire built here (the bench must not depend on ../shared): nine choice
// items whose options carry ordinalValue weights 0-3, so submitting computes a score.
const ORDINAL = 'http://hl7.org/fhir/StructureDefinition/ordinalValue';
const SYSTEM = 'urn:carebase:bench:answers';

export const benchQuestionnaire = {
  resourceType: 'Questionnaire',
  status: 'active',
  title: 'Bench nine-item screener',
  url: 'urn:carebase:bench:screener',
  item: Array.from({ length: 9 }, (_, i) => ({
    linkId: `q${i + 1}`,
    text: `Question ${i + 1}`,
    type: 'choice',
    required: true,
    answerOption: [0, 1, 2, 3].map((w) => ({
      valueCoding: { system: SYSTEM, code: `a${w}`, display: `Answer ${w}` },
      extension: [{ url: ORDINAL, valueDecimal: w }],
    })),
  })),
};

/** All nine questions answered; `seed` varies the answers. */
export const benchAnswers = (seed: number) =>
  benchQuestionnaire.item.map((it, i) => ({
    linkId: it.linkId,
    answer: [{ valueCoding: { system: SYSTEM, code: `a${(seed + i) % 4}` } }],
  }));
