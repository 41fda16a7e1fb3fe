// Request bodies and request sequences shared by the benchmarks.
import type autocannon from 'autocannon';
import { benchAnswers, benchQuestionnaire } from './questionnaire.fixture.js';

export interface Versioned {
  id: string;
  version: number;
}

export const patient = (i: number) => ({
  name: { given: ['Bench', `P${i}`], family: 'Müller' },
  birthDate: '1980-01-01',
  gender: 'other',
  identifiers: [{ system: 'urn:bench:mrn', value: `B-${i}` }],
  email: `bench${i}@example.org`,
});

/**
 * Requests that each change the next item of `items` with the version last seen for it (from the
 * ETag'd body of the previous answer), so a correct server answers 2xx to every one.
 */
export function roundRobin(base: string, headers: Record<string, string>, method: 'PATCH' | 'POST', items: Versioned[], pathOf: (v: Versioned) => string, bodyOf: (i: number) => unknown): autocannon.Options {
  let next = 0;
  return {
    url: base,
    requests: [
      {
        method,
        setupRequest: (req, context) => {
          const ctx = context as { v?: Versioned };
          const v = items[next % items.length]!;
          ctx.v = v;
          return { ...req, path: pathOf(v), headers: { ...headers, 'if-match': `W/"${v.version}"` }, body: JSON.stringify(bodyOf(next++)) };
        },
        onResponse: (status, _body, context) => {
          const ctx = context as { v?: Versioned };
          // A change bumps the version by exactly one; counting spares the load generator (which
          // shares the cores with the server) a JSON.parse of every answer.
          if (status === 200 && ctx.v) ctx.v.version++;
        },
      },
    ],
  };
}

interface Target {
  base: string;
  headers: Record<string, string>;
  adminHeaders: Record<string, string>;
}

/**
 * Reads each item's current version again. A turn of the load generator ends with requests still
 * in flight, whose changes the server makes but whose answers nobody counts; without this, the next
 * turn would send those items a stale If-Match (412).
 */
export async function refreshVersions(t: Target, items: Versioned[], pathOf: (v: Versioned) => string): Promise<void> {
  // Those requests may still be queued for a pool connection: let them finish first.
  await new Promise((r) => setTimeout(r, 1000));
  for (let i = 0; i < items.length; i += 50) {
    await Promise.all(
      items.slice(i, i + 50).map(async (v) => {
        const res = await fetch(`${t.base}${pathOf(v)}`, { headers: t.headers });
        if (!res.ok) throw new Error(`GET ${pathOf(v)}: ${res.status}`);
        v.version = ((await res.json()) as Versioned).version;
      }),
    );
  }
}

/** n new patients (ids and versions). */
export async function createPatients(t: Target, n: number): Promise<Versioned[]> {
  const created: Versioned[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${t.base}/v1/patients`, { method: 'POST', headers: t.headers, body: JSON.stringify(patient(i)) });
    const body = (await res.json()) as Versioned;
    created.push({ id: body.id, version: body.version });
  }
  return created;
}

/** The bench screener, created and activated. */
export async function createQuestionnaire(t: Target): Promise<string> {
  const res = await fetch(`${t.base}/v1/questionnaires`, { method: 'POST', headers: t.adminHeaders, body: JSON.stringify(benchQuestionnaire) });
  return ((await res.json()) as { id: string }).id;
}

/** n in-progress responses to the questionnaire, over the given patients, with answers saved. */
export async function startResponses(t: Target, questionnaireId: string, patients: Versioned[], n: number): Promise<Versioned[]> {
  const out: Versioned[] = [];
  for (let i = 0; i < n; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, n - i) }, async (_, j) => {
        const body = { questionnaireId, patientId: patients[(i + j) % patients.length]!.id, item: benchAnswers(i + j) };
        const res = await fetch(`${t.base}/v1/questionnaire-responses`, { method: 'POST', headers: t.headers, body: JSON.stringify(body) });
        return (await res.json()) as Versioned;
      }),
    );
    out.push(...batch);
  }
  return out;
}
