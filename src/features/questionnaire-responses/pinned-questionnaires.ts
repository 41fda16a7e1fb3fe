// The questionnaire a response is pinned to, as the engine reads it. Responses only exist for
// questionnaires that were active, and an active or retired questionnaire never changes its
// definition (only its status) nor can it be deleted, so its engine form is kept in-process
// (bounded, least recently used first out): a draft save or submit reads no questionnaire row.
import type { Querier } from '../../platform/db/db.js';
import { AppError } from '../../errors.js';
import type { Questionnaire } from '../questionnaires/fhir-types.js';
import type { QuestionnaireView } from '../questionnaires/questionnaires.schema.js';
import { toView } from '../questionnaires/questionnaires.service.js';
import { questionnaires, type QuestionnaireRow } from '../questionnaires/questionnaires.table.js';
import { findLive } from '../shared/versioned-repo.js';

const MAX_ENTRIES = 500;
const frozen = new Map<string, Questionnaire>();

/** The FHIR Questionnaire the engine works on, from our representation of it. */
export function engineQuestionnaire(v: QuestionnaireView): Questionnaire {
  const { version: _v, businessVersion, createdAt: _c, updatedAt: _u, ...rest } = v as QuestionnaireView & { businessVersion?: string };
  return { ...(rest as unknown as Questionnaire), ...(businessVersion !== undefined ? { version: businessVersion } : {}) };
}

// Shared between requests, so nothing may change it: a mutation throws (ESM code is strict).
function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const child of Object.values(v)) deepFreeze(child);
  }
  return v;
}

export async function pinnedQuestionnaire(read: <X>(fn: (q: Querier) => Promise<X>) => Promise<X>, tenantId: string, id: string): Promise<Questionnaire> {
  const key = `${tenantId}/${id}`;
  const hit = frozen.get(key);
  if (hit) {
    frozen.delete(key);
    frozen.set(key, hit);
    return hit;
  }
  const row = await read((q) => findLive<QuestionnaireRow>(q, questionnaires, tenantId, id));
  if (!row) throw new AppError('INTERNAL', 'The questionnaire of a response is missing');
  const q = deepFreeze(engineQuestionnaire(toView(row)));
  // Only a definition that can no longer change is kept (a draft has no responses; belt and braces).
  if (row.status !== 'draft') {
    if (frozen.size >= MAX_ENTRIES) frozen.delete(frozen.keys().next().value!);
    frozen.set(key, q);
  }
  return q;
}
