// Questionnaire fixtures (read from ../shared/fixtures, never modified) and a small valid
// definition to vary in tests.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

const FIXTURES = fileURLToPath(new URL('../../../shared/fixtures/', import.meta.url));

/** The fixture file parsed, a fresh copy on every call. */
export const fixture = (path: string): Record<string, any> => JSON.parse(readFileSync(`${FIXTURES}${path}`, 'utf8'));

/** Every stand-alone Questionnaire fixture that must import unchanged. */
export const QUESTIONNAIRE_FIXTURES = [
  'questionnaires/phq9-lhcforms.questionnaire.json',
  'questionnaires/phq9-sdc.questionnaire.json',
  'questionnaires/gad7-lhcforms.questionnaire.json',
  'questionnaires/apgar-itemweight-lhcforms.questionnaire.json',
  'questionnaires/scoring-edge-cases.questionnaire.json',
  'fhir-r4-core-examples/questionnaire-zika-virus-exposure-assessment.json',
] as const;

export const USSG_BUNDLE = 'questionnaires/ussg-fht-sdc.questionnaire-bundle.json';

/**
 * What the API returns for an imported FHIR resource: the same resource, with our id (the FHIR
 * id is replaced), our version, and the FHIR business version moved to businessVersion.
 */
export function asReturned(fhir: Record<string, any>, version = 1) {
  const { id: _id, version: businessVersion, ...rest } = fhir;
  return {
    ...rest,
    ...(businessVersion !== undefined ? { businessVersion } : {}),
    id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/),
    version,
    createdAt: expect.any(String),
    updatedAt: expect.any(String),
  };
}

/** A small valid draft: a boolean, a choice with options, a conditional string, a group. */
export const simpleQuestionnaire = (over: Record<string, unknown> = {}): Record<string, any> => ({
  resourceType: 'Questionnaire',
  status: 'draft',
  title: 'Intake basics',
  url: 'https://forms.example.org/intake-basics',
  item: [
    { linkId: 'smoker', text: 'Do you smoke?', type: 'boolean', required: true },
    {
      linkId: 'mood',
      text: 'Mood today',
      type: 'choice',
      answerOption: [
        { valueCoding: { system: 'urn:test:mood', code: 'good' }, extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/ordinalValue', valueDecimal: 0 }] },
        { valueCoding: { system: 'urn:test:mood', code: 'bad' }, extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/ordinalValue', valueDecimal: 1 }] },
      ],
    },
    { linkId: 'packs', text: 'Packs a day', type: 'integer', enableWhen: [{ question: 'smoker', operator: '=', answerBoolean: true }] },
    { linkId: 'contact', type: 'group', repeats: true, item: [{ linkId: 'contact.name', text: 'Name', type: 'string', maxLength: 100 }] },
  ],
  ...over,
});

/**
 * Imports a Questionnaire fixture and activates it, with a client that may publish (admin or
 * manager); returns the questionnaire as the API returns it.
 */
export async function importActive(
  api: (method: string, path: string, o?: { body?: unknown; headers?: Record<string, string> }) => Promise<{ status: number; body: any; text: string }>,
  path: string,
): Promise<Record<string, any>> {
  const created = await api('POST', '/v1/questionnaires', { body: { ...fixture(path), status: 'draft' } });
  expect(created.status, created.text).toBe(201);
  const active = await api('PATCH', `/v1/questionnaires/${created.body.id}`, { body: { status: 'active' }, headers: { 'if-match': 'W/"1"' } });
  expect(active.status, active.text).toBe(200);
  return active.body;
}
