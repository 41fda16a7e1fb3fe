import { describe, expect, it } from 'vitest';
import type { ScopedEvent } from '../../features/events/events.js';
import { parseTopic, parseTopics, topicMatches } from './topics.js';

const ID = '01a206cb-b45d-702e-8342-d542ddcb52a4';
const Q = '01a206cb-b3c8-701d-8c39-748af5ccea63';
const e = (type: string, id: string, patientId: string | null, questionnaireId: string | null = null): ScopedEvent => ({
  id: '1', type: `${type}.updated`, resource: { type, id, version: 2 }, occurredAt: '', requestId: null, tenantId: 't', patientId, questionnaireId,
});

describe('topics', () => {
  it('parses the contract forms (ids lower-cased) and refuses everything else with a reason', () => {
    expect(parseTopic(`patients/${ID.toUpperCase()}`)).toEqual({ kind: 'patient', key: `patients/${ID}`, id: ID });
    expect(parseTopic(`questionnaire-responses/${ID}`)).toMatchObject({ kind: 'response', id: ID });
    expect(parseTopic(`questionnaires/${Q}/responses`)).toMatchObject({ kind: 'questionnaire-responses', questionnaireId: Q });
    expect(parseTopic('rooms/front-desk')).toEqual({ kind: 'room', key: 'rooms/front-desk', room: 'front-desk' });
    expect(parseTopic(`rooms/questionnaire-responses:${ID}`)).toMatchObject({ kind: 'room', resource: { type: 'questionnaire-responses', id: ID } });
    for (const bad of ['', 'patients', 'patients/x', `patients/${ID}/more`, `questionnaires/${Q}`, 'rooms/', 'rooms/Front', 'rooms/a/b', `rooms/providers:${ID}`, 'x'.repeat(201)]) {
      expect(parseTopic(bad), bad).toHaveProperty('problem');
    }
    expect(parseTopic(`appointments/${ID}/2026-01-01`)).toEqual({ problem: 'appointments topics are not available yet' });
    const { topics, problems } = parseTopics([`patients/${ID}`, `patients/${ID.toUpperCase()}`, 'nope'], '/topics');
    expect(topics).toHaveLength(1); // the same topic twice is one
    expect(problems).toEqual([{ path: '/topics/2', message: expect.stringMatching(/unknown topic/) }]);
  });

  it('matches events by resource, or by questionnaire for the collection topic; rooms match no resource event', () => {
    const p = parseTopic(`patients/${ID}`) as never;
    expect(topicMatches(p, e('patients', ID, ID))).toBe(true);
    expect(topicMatches(p, e('questionnaire-responses', ID, ID))).toBe(false);
    const col = parseTopic(`questionnaires/${Q}/responses`) as never;
    expect(topicMatches(col, e('questionnaire-responses', ID, 'p', Q))).toBe(true);
    expect(topicMatches(col, e('questionnaire-responses', ID, 'p', ID))).toBe(false);
    expect(topicMatches(col, e('questionnaires', Q, null))).toBe(false);
    expect(topicMatches(parseTopic('rooms/x') as never, e('patients', ID, ID))).toBe(false);
  });
});
