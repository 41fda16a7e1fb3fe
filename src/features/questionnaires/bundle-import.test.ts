// The Bundle folding on its own (pure): how ValueSets are found, what ids they get, which
// CodeSystems come along, and what is left out. The HTTP round trip is in questionnaires.test.ts.
import { describe, expect, it } from 'vitest';
import { REFERENCES_CONTAINED, importBundle } from './bundle-import.js';

const vs = (id: string | undefined, url: string, extra: Record<string, unknown> = {}) => ({
  resourceType: 'ValueSet',
  ...(id ? { id } : {}),
  url,
  compose: { include: [{ system: 'urn:test:cs', concept: [{ code: 'a' }] }] },
  ...extra,
});
const choice = (linkId: string, answerValueSet: string) => ({ linkId, type: 'choice', answerValueSet });
const bundle = (questionnaire: Record<string, unknown>, ...resources: Record<string, unknown>[]) => ({
  resourceType: 'Bundle',
  type: 'collection',
  entry: [{ resource: { resourceType: 'Questionnaire', status: 'draft', ...questionnaire } }, ...resources.map((resource) => ({ resource }))],
});

describe('importBundle', () => {
  it('finds ValueSets by url, url|version, fullUrl and request url; folds each once under a free id', () => {
    const b = bundle(
      {
        contained: [{ resourceType: 'ValueSet', id: 'yn', compose: { include: [{ system: 'urn:x', concept: [{ code: 'y' }] }] } }],
        item: [
          choice('1', 'urn:vs:yn'),
          choice('2', 'urn:vs:yn|2'),
          { linkId: 'g', type: 'group', item: [choice('3', 'http://example.org/fhir/ValueSet/full'), choice('4', 'urn:vs:yn')] },
          choice('5', '#yn'),
          choice('6', 'urn:vs:unknown'),
        ],
      },
      vs('yn', 'urn:vs:yn', { version: '2' }),
      vs(undefined, 'urn:vs:other'),
    );
    b.entry[2] = { ...b.entry[2]!, fullUrl: 'http://example.org/fhir/ValueSet/full' } as never;
    const r = importBundle(b);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.at).toBe('/entry/0/resource');
    const q = r.questionnaire as any;
    expect(q.item.map((i: any) => i.answerValueSet ?? i.item.map((x: any) => x.answerValueSet))).toEqual(['#yn-2', '#yn-2', ['#valueset', '#yn-2'], '#yn', 'urn:vs:unknown']);
    expect(q.contained.map((c: any) => c.id)).toEqual(['yn', 'yn-2', 'valueset']);
    expect(q.contained[1]).toEqual({ ...vs('yn', 'urn:vs:yn', { version: '2' }), id: 'yn-2' });
    // The input is not modified.
    expect((b.entry[0]!.resource as any).item[0]).toEqual(choice('1', 'urn:vs:yn'));
  });

  it('folds the CodeSystems whose codes are used, references them, and leaves out what nothing uses', () => {
    const b = bundle(
      { item: [choice('1', 'urn:vs:a'), { linkId: '2', type: 'choice', answerOption: [{ valueCoding: { system: 'urn:cs:direct', code: 'x' } }] }] },
      vs('a', 'urn:vs:a', { compose: { include: [{ system: 'urn:cs:via-vs', concept: [{ code: 'a' }] }] } }),
      vs('unused', 'urn:vs:unused'),
      { resourceType: 'CodeSystem', id: 'via', url: 'urn:cs:via-vs', concept: [{ code: 'a' }] },
      { resourceType: 'CodeSystem', id: 'direct', url: 'urn:cs:direct', concept: [{ code: 'x' }] },
      { resourceType: 'CodeSystem', id: 'lonely', url: 'urn:cs:lonely' },
    );
    const r = importBundle(b);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const q = r.questionnaire as any;
    expect(q.contained.map((c: any) => c.id)).toEqual(['a', 'via', 'direct']);
    expect(q.extension).toEqual([
      { url: REFERENCES_CONTAINED, valueReference: { reference: '#via' } },
      { url: REFERENCES_CONTAINED, valueReference: { reference: '#direct' } },
    ]);
  });

  it('lists every problem: no Questionnaire or several, foreign resources, a folded resource with its own contained', () => {
    expect(importBundle({ resourceType: 'Bundle', entry: [{ resource: vs('a', 'urn:a') }, { resource: { resourceType: 'Patient' } }, {}] })).toEqual({
      ok: false,
      problems: [
        { path: '/entry/2/resource', message: 'is required' },
        { path: '/entry', message: 'must hold exactly one Questionnaire (found 0)' },
        { path: '/entry/1/resource/resourceType', message: expect.stringMatching(/only ValueSet and CodeSystem/) },
      ],
    });
    const two = bundle({}, { resourceType: 'Questionnaire', status: 'draft' });
    expect(importBundle(two)).toMatchObject({ ok: false, problems: [{ path: '/entry', message: expect.stringMatching(/found 2/) }] });
    expect(importBundle({ resourceType: 'Bundle' })).toMatchObject({ ok: false, problems: [{ path: '/entry' }] });
    const nested = bundle({ item: [choice('1', 'urn:vs:a')] }, vs('a', 'urn:vs:a', { contained: [vs('b', 'urn:b')] }));
    expect(importBundle(nested)).toEqual({ ok: false, problems: [{ path: '/entry/1/resource/contained', message: expect.stringMatching(/cannot contain/) }] });
  });
});
