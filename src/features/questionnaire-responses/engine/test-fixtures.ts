// Test helper: reads the shared fixtures unchanged. This file sits in
// src/features/questionnaire-responses/engine/, five levels below /work, where shared/ lives.
import { readFileSync } from 'node:fs';
import type { Questionnaire, ResponseItem } from '../../questionnaires/fhir-types.js';

const DIR = new URL('../../../../../shared/fixtures/questionnaires/', import.meta.url);

export function fixture<T = Record<string, unknown>>(name: string): T {
  return JSON.parse(readFileSync(new URL(name, DIR), 'utf8')) as T;
}

export const questionnaire = (name: string): Questionnaire => fixture<Questionnaire>(name);

/** The item array of a QuestionnaireResponse fixture. */
export const responseItems = (name: string): ResponseItem[] => fixture<{ item: ResponseItem[] }>(name).item;

/** The Questionnaire of the USSG-FHT transaction bundle (entry 0). */
export function ussgQuestionnaire(): Questionnaire {
  const bundle = fixture<{ entry: { resource: Questionnaire }[] }>('ussg-fht-sdc.questionnaire-bundle.json');
  const q = bundle.entry.map((e) => e.resource).find((r) => r.resourceType === 'Questionnaire');
  if (!q) throw new Error('no Questionnaire in the USSG bundle');
  return q;
}

/** A GAD-7 response built by hand for the fixture (which ships without one). */
export function gad7Items(total?: number): ResponseItem[] {
  const coded = (linkId: string, code: string): ResponseItem => ({ linkId, answer: [{ valueCoding: { code } }] });
  return [
    coded('/69725-0', 'LA6569-3'), // Several days           1
    coded('/68509-9', 'LA18938-3'), // More days than not    2 (this item's own code for "2")
    coded('/69733-4', 'LA6571-9'), // Nearly every day       3
    coded('/69734-2', 'LA6568-5'), // Not at all             0
    coded('/69735-9', 'LA6569-3'), // Several days           1
    coded('/69689-8', 'LA6570-1'), // More than half the days 2
    coded('/69736-7', 'LA6571-9'), // Nearly every day       3
    ...(total === undefined ? [] : [{ linkId: '/70274-6', answer: [{ valueDecimal: total }] }]),
  ];
}

/** An Apgar response: linkId → LOINC answer code. */
export function apgarItems(codes: Record<string, string>): ResponseItem[] {
  return Object.entries(codes).map(([linkId, code]) => ({ linkId, answer: [{ valueCoding: { system: 'http://loinc.org', code } }] }));
}

