// Questionnaire definitions: import (a FHIR Questionnaire, or a Bundle folded into one), read,
// list, the draft → active → retired lifecycle, and edits, which only drafts take: responses refer
// to active and retired questionnaires, so those never change beyond their status.
import { newId } from '../../platform/ids.js';
import { authorize } from '../../auth/permissions.js';
import type { Ctx } from '../../context.js';
import { AppError, notFound, validationFailed, type ErrorDetail } from '../../errors.js';
import type { Querier } from '../../platform/db/db.js';
import { mergePatch } from '../shared/merge-patch.js';
import { pageRequest, toPage } from '../shared/pagination.js';
import { findLive, softDeleteLocked, updateLocked } from '../shared/versioned-repo.js';
import { assertCurrent, iso, requireVersion } from '../shared/versioning.js';
import { cachePut, readThrough } from '../shared/resource-cache.js';
import { writeTx } from '../shared/write-tx.js';
import { importBundle } from './bundle-import.js';
import { definitionProblems, nestsDeeperThan, type DefinitionOptions } from './definition-rules.js';
import { findQuestionnaireShared, listQuestionnaires as listRows } from './questionnaires.repo.js';
import {
  STATUSES,
  type QuestionnaireCreateQuery,
  type QuestionnaireListQuery,
  type QuestionnaireStatus,
  type QuestionnaireView,
  type StoredQuestionnaire,
} from './questionnaires.schema.js';
import { questionnaires, type QuestionnaireRow } from './questionnaires.table.js';
import { writeMeta } from '../shared/write-meta.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The lifecycle: what each status may become. */
const NEXT: Record<QuestionnaireStatus, QuestionnaireStatus[]> = { draft: ['active', 'retired'], active: ['retired'], retired: [] };
/** Members of our representation that are not FHIR elements: the server sets them. */
const SERVER_MANAGED = ['id', 'version', 'createdAt', 'updatedAt'];
const MAX_BODY_DEPTH = 72; // a Bundle wraps the Questionnaire in a few more levels than definitionProblems allows

/**
 * Our representation is the FHIR resource with our id, version and timestamps. FHIR's own
 * `version` (the business version, e.g. "2.8.0") would collide with ours, so it is returned as
 * `businessVersion`; the FHIR id of an import is replaced by ours, as a FHIR server's create does.
 */
export function toView(r: QuestionnaireRow): QuestionnaireView {
  const { resourceType: _t, id: _i, version: businessVersion, status: _s, ...elements } = r.resource;
  return {
    resourceType: 'Questionnaire',
    id: r.id,
    version: r.version,
    ...(businessVersion !== undefined ? { businessVersion } : {}),
    status: r.status,
    ...elements,
    createdAt: iso(r.createdAt),
    updatedAt: iso(r.updatedAt),
  };
}

const columnsOf = (s: StoredQuestionnaire) => ({ status: s.status, title: s.title ?? null, url: s.url ?? null, resource: s });

/** The answerValueSet canonicals of a stored definition that point outside it (accepted when it was created). */
function externalValueSets(items: unknown, out = new Set<string>()): Set<string> {
  for (const item of Array.isArray(items) ? items : []) {
    if (!isObj(item)) continue;
    if (typeof item.answerValueSet === 'string' && !item.answerValueSet.startsWith('#')) out.add(item.answerValueSet);
    externalValueSets(item.item, out);
  }
  return out;
}

function assertDefinition(resource: unknown, opts: DefinitionOptions, place = (p: ErrorDetail) => p): asserts resource is StoredQuestionnaire {
  const problems = definitionProblems(resource, opts).map(place);
  if (problems.length > 0) throw validationFailed(problems, 'The questionnaire definition is invalid');
}

/** The POST body, a Questionnaire or a Bundle, as the FHIR resource to store (validated, without id). */
function definitionOf(body: unknown, opts: DefinitionOptions): StoredQuestionnaire {
  if (!isObj(body)) throw validationFailed([{ path: '/', message: 'must be a FHIR Questionnaire or Bundle (a JSON object)' }]);
  if (nestsDeeperThan(body, MAX_BODY_DEPTH)) throw validationFailed([{ path: '/', message: `nests deeper than ${MAX_BODY_DEPTH} levels` }]);
  let resource: Obj = body;
  let place = (p: ErrorDetail) => p;
  if (body.resourceType === 'Bundle') {
    const imported = importBundle(body);
    if (!imported.ok) throw validationFailed(imported.problems, 'The bundle cannot be imported');
    resource = imported.questionnaire;
    place = (p) => ({ ...p, path: `${imported.at}${p.path === '/' ? '' : p.path}` });
  }
  // Members of our representation that are not FHIR elements would collide with ours on the way out.
  const notFhir: ErrorDetail[] = ['createdAt', 'updatedAt', 'businessVersion']
    .filter((k) => k in resource)
    .map((k) => ({ path: `/${k}`, message: k === 'businessVersion' ? 'is not a FHIR element: send the business version as version' : 'is set by the server' }));
  const problems = [...notFhir, ...definitionProblems(resource, opts)].map(place);
  if (problems.length > 0) throw validationFailed(problems, 'The questionnaire definition is invalid');
  const { id: _fhirId, ...stored } = resource as StoredQuestionnaire;
  return stored;
}

/** Patients see published questionnaires only: a draft is work in progress of the practice's staff. */
const STAFF_ROLES = ['admin', 'manager', 'clinician', 'staff'] as const;
const seesDrafts = (ctx: Ctx) => STAFF_ROLES.some((r) => ctx.principal.roles.has(r));

export async function createQuestionnaire(ctx: Ctx, body: unknown, query: QuestionnaireCreateQuery = {}): Promise<QuestionnaireView> {
  authorize(ctx.principal, 'questionnaires:write');
  const resource = definitionOf(body, { externalValueSets: query.allowExternalValueSets ? 'any' : new Set() });
  if (resource.status !== 'draft') authorize(ctx.principal, 'questionnaires:publish');
  const now = ctx.now();
  const row = { tenantId: ctx.tenantId, id: newId(), version: 1, ...columnsOf(resource), createdAt: now, updatedAt: now };
  return cachePut(ctx, 'questionnaires', await writeTx(ctx, async (q) => {
    await q.insert(questionnaires).values({ ...row, writeMeta: writeMeta(ctx, now, { type: 'questionnaire.created' }) });
    return toView({ ...row, deletedAt: null });
  }));
}

export async function getQuestionnaire(ctx: Ctx, id: string): Promise<QuestionnaireView> {
  authorize(ctx.principal, 'questionnaires:read');
  const found = await readThrough(ctx, 'questionnaires', id, async () => {
    const row = await ctx.db.read(ctx.tenantId, (q) => findLive<QuestionnaireRow>(q, questionnaires, ctx.tenantId, id));
    return row && toView(row);
  });
  if (!found || (found.status === 'draft' && !seesDrafts(ctx))) throw notFound('Questionnaire');
  return found;
}

export async function listQuestionnaires(ctx: Ctx, query: QuestionnaireListQuery) {
  authorize(ctx.principal, 'questionnaires:read');
  const { limit, afterId } = pageRequest(query);
  const filters = { status: query.status, title: query.title, url: query.url, hideDrafts: !seesDrafts(ctx) };
  const rows = await ctx.db.read(ctx.tenantId, (q) => listRows(q, ctx.tenantId, limit, afterId, filters));
  return toPage(rows.map(toView), limit);
}

/** Reads the patch's status member: undefined when absent, a 400 when it is not a status. */
function statusIn(patch: Obj): QuestionnaireStatus | undefined {
  if (!('status' in patch)) return undefined;
  if (!(STATUSES as readonly unknown[]).includes(patch.status)) throw validationFailed([{ path: '/status', message: `must be one of: ${STATUSES.join(', ')}` }]);
  return patch.status as QuestionnaireStatus;
}

/**
 * A JSON merge patch of the representation. A draft takes any change (revalidated whole); an
 * active or retired questionnaire only a status change along the lifecycle.
 */
export async function updateQuestionnaire(ctx: Ctx, id: string, expectedVersion: number | undefined, patch: unknown): Promise<QuestionnaireView> {
  authorize(ctx.principal, 'questionnaires:write');
  const expected = requireVersion(expectedVersion);
  if (!isObj(patch) || Object.keys(patch).length === 0) throw validationFailed([{ path: '/', message: 'must be a JSON object with at least one member' }]);
  if (nestsDeeperThan(patch, MAX_BODY_DEPTH)) throw validationFailed([{ path: '/', message: `nests deeper than ${MAX_BODY_DEPTH} levels` }]);
  const managed = SERVER_MANAGED.filter((k) => k in patch).map((k) => ({ path: `/${k}`, message: 'is set by the server and cannot be patched' }));
  if (managed.length > 0) throw validationFailed(managed);
  const status = statusIn(patch);

  return cachePut(ctx, 'questionnaires', await writeTx(ctx, async (q) => {
    const row = assertCurrent(await findLive<QuestionnaireRow>(q, questionnaires, ctx.tenantId, id, true), expected, 'Questionnaire');
    if (row.status !== 'draft' && Object.keys(patch).some((k) => k !== 'status')) {
      throw new AppError('CONFLICT', `This questionnaire is ${row.status}: only its status can change (responses refer to it); create a new version as a new draft instead`);
    }
    if (status !== undefined && status !== row.status) {
      authorize(ctx.principal, 'questionnaires:publish');
      if (!NEXT[row.status].includes(status)) {
        throw new AppError('INVALID_TRANSITION', `A questionnaire that is ${row.status} cannot become ${status}; the lifecycle is draft → active → retired (or draft → retired)`);
      }
    }
    let next: StoredQuestionnaire = { ...row.resource, status: status ?? row.status };
    // Only a draft's definition changes, and it is revalidated whole (activation included); a
    // published one keeps its content as it was accepted.
    if (row.status === 'draft') {
      const { businessVersion, ...elements } = patch;
      const merged = mergePatch(row.resource, { ...elements, ...(businessVersion !== undefined ? { version: businessVersion } : {}) });
      const toOurs = (p: ErrorDetail) => (p.path === '/version' ? { ...p, path: '/businessVersion' } : p);
      assertDefinition(merged, { externalValueSets: externalValueSets(row.resource.item) }, toOurs);
      next = merged;
    }
    const now = ctx.now();
    return toView(await updateLocked<QuestionnaireRow>(q, questionnaires, ctx.tenantId, id, { ...columnsOf(next), writeMeta: writeMeta(ctx, now, { type: 'questionnaire.updated' }) }, now));
  }));
}

/** Only drafts are deleted (softly); an active or retired questionnaire is retired instead. */
export async function deleteQuestionnaire(ctx: Ctx, id: string, expectedVersion: number | undefined): Promise<void> {
  authorize(ctx.principal, 'questionnaires:delete');
  const expected = requireVersion(expectedVersion);
  const deletedVersion = await writeTx(ctx, async (q) => {
    const row = assertCurrent(await findLive<QuestionnaireRow>(q, questionnaires, ctx.tenantId, id, true), expected, 'Questionnaire');
    if (row.status !== 'draft') {
      const hint = row.status === 'active' ? 'retire it instead (PATCH {"status": "retired"})' : 'it stays for the responses that refer to it';
      throw new AppError('CONFLICT', `Only draft questionnaires can be deleted; this one is ${row.status}: ${hint}`);
    }
    const now = ctx.now();
    return softDeleteLocked(q, questionnaires, ctx.tenantId, id, now, { writeMeta: writeMeta(ctx, now, { type: 'questionnaire.deleted' }) });
  });
  await ctx.cache.tombstone(ctx.tenantId, 'questionnaires', id, deletedVersion);
}

/**
 * For the responses feature, inside its write transaction: the questionnaire a response is
 * started on, which must be active. The row stays share-locked until that transaction ends, so a
 * concurrent retire waits for it.
 */
export async function activeQuestionnaireFor(q: Querier, tenantId: string, id: string): Promise<QuestionnaireView> {
  const row = await findQuestionnaireShared(q, tenantId, id);
  if (!row) throw notFound('Questionnaire');
  if (row.status !== 'active') throw new AppError('CONFLICT', `Responses can only be started on an active questionnaire; this one is ${row.status}`);
  return toView(row);
}
