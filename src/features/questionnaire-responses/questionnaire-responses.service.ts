// Questionnaire responses: start (in-progress) on an active questionnaire, save drafts, submit
// (validated against the pinned questionnaire and scored by the server), and amend a submitted
// response with a new one. Submitted responses ('completed', 'amended') never change.
import { and, eq, type SQL } from 'drizzle-orm';
import { newId } from '../../platform/ids.js';
import { authorize, inPatientScope, patientLimit } from '../../auth/permissions.js';
import type { Ctx } from '../../context.js';
import { AppError, notFound, OutOfScope, validationFailed } from '../../errors.js';
import { auditedRead, auditedWrite } from '../audit/audited.js';
import { writeMeta } from '../shared/write-meta.js';
import type { AuditAction, AuditEntry } from '../audit/audit-record.js';
import type { Querier } from '../../platform/db/db.js';
import { patients } from '../patients/patients.table.js';
import type { Questionnaire, ResponseItem } from '../questionnaires/fhir-types.js';
import { activeQuestionnaireFor } from '../questionnaires/questionnaires.service.js';
import { pageRequest, toPage } from '../shared/pagination.js';
import { cachePut, readThrough } from '../shared/resource-cache.js';
import { findLive, listLive, softDeleteLocked } from '../shared/versioned-repo.js';
import { changeIfCurrent } from '../shared/conditional-change.js';
import { engineQuestionnaire, pinnedQuestionnaire } from './pinned-questionnaires.js';
import { assertCurrent, iso, requireVersion } from '../shared/versioning.js';
import { writeTx } from '../shared/write-tx.js';
import { scoreResponse, toFhirQuestionnaireResponse, validateResponse, withServerScore, type FhirQuestionnaireResponse, type ValidationMode } from './engine/index.js';
import type { QuestionnaireResponse, ResponseAmend, ResponseCreate, ResponseDraft, ResponseListQuery } from './questionnaire-responses.schema.js';
import { questionnaireResponses as responses, type ResponseRow } from './questionnaire-responses.table.js';

const TYPE = 'questionnaire-responses';
const inScope = inPatientScope;

/**
 * JSON with object keys in the order PostgreSQL's jsonb keeps them (shorter keys first, then by
 * bytes), so a response reads the same before and after a round trip through the database: the
 * 201 of a create, a later GET and an Idempotency-Key replay are byte-identical. Rows read back
 * from the database already come in this order; rows built here get it from inserted().
 */
function jsonbOrder<T>(v: T): T {
  if (Array.isArray(v)) return v.map(jsonbOrder) as T;
  if (typeof v !== 'object' || v === null) return v;
  const keys = Object.keys(v).sort(jsonbKeyOrder);
  return Object.fromEntries(keys.map((k) => [k, jsonbOrder((v as Record<string, unknown>)[k])])) as T;
}

const ASCII = /^[\x00-\x7f]*$/;

/** Shorter UTF-8 first, then bytewise; for ASCII keys (nearly all) the string is its bytes. */
function jsonbKeyOrder(a: string, b: string): number {
  if (ASCII.test(a) && ASCII.test(b)) return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
  const [x, y] = [Buffer.from(a), Buffer.from(b)];
  return x.length - y.length || Buffer.compare(x, y);
}

export const toResponse = (r: ResponseRow): QuestionnaireResponse => ({
  id: r.id,
  version: r.version,
  questionnaireId: r.questionnaireId,
  questionnaireVersion: r.questionnaireVersion,
  patientId: r.patientId,
  status: r.status,
  item: r.items,
  ...(r.score ? { score: r.score } : {}),
  ...(r.amends !== null ? { amends: r.amends } : {}),
  ...(r.amendReason !== null ? { amendReason: r.amendReason } : {}),
  ...(r.submittedAt ? { submittedAt: iso(r.submittedAt) } : {}),
  createdAt: iso(r.createdAt),
  updatedAt: iso(r.updatedAt),
});

/** A row about to be inserted, with its jsonb in the order the database will give it back. */
const inserted = (r: ResponseRow): ResponseRow => ({ ...r, items: jsonbOrder(r.items), score: r.score && jsonbOrder(r.score) });

/** What a change of an in-progress response sets: its items, and when it is submitted its score, status and time. */
type ResponseChange = Pick<ResponseRow, 'items'> & Partial<Pick<ResponseRow, 'score' | 'status' | 'submittedAt'>>;

/** Response `r` after change `c` (see changeIfCurrent), its jsonb in the order the database keeps it. */
const afterChange = (r: QuestionnaireResponse, c: ResponseChange, version: number, now: Date): QuestionnaireResponse => ({
  ...r,
  version,
  item: jsonbOrder(c.items),
  ...(c.score ? { score: jsonbOrder(c.score) } : {}),
  ...(c.status ? { status: c.status } : {}),
  ...(c.submittedAt ? { submittedAt: iso(c.submittedAt) } : {}),
  updatedAt: iso(now),
});

function check(q: Questionnaire, items: ResponseItem[], mode: ValidationMode): void {
  const problems = validateResponse(q, items, mode, { basePath: '/item' });
  if (problems.length > 0) throw validationFailed(problems, mode === 'submit' ? 'The response cannot be submitted' : 'The response is invalid');
}

/** Submit-mode validation and the server's score: what a submitted response stores. */
function submitted(q: Questionnaire, items: ResponseItem[]) {
  check(q, items, 'submit');
  const score = scoreResponse(q, items);
  return { items: withServerScore(q, items, score), score };
}

/** A live response in the principal's scope, locked for the transaction; 404 otherwise. */
async function lockedInScope(ctx: Ctx, q: Querier, id: string): Promise<ResponseRow> {
  return ownOrNotFound(ctx, await findLive<ResponseRow>(q, responses, ctx.tenantId, id, true));
}

function ownOrNotFound<T extends { patientId: string }>(ctx: Ctx, r: T | undefined): T {
  if (!r) throw notFound('Questionnaire response');
  if (!inScope(ctx.principal, r.patientId)) throw new OutOfScope('Questionnaire response');
  return r;
}

/** The event of a change of a response. */
const changed = (kind: 'created' | 'updated' | 'deleted', r: { patientId: string; questionnaireId: string }) => ({ type: `questionnaire-response.${kind}`, patientId: r.patientId, questionnaireId: r.questionnaireId });

/** The audit entry of an access to response `id` (of patient `patientId`, when known). */
const access = (action: AuditAction, id: string | null, patientId?: string, detail?: Record<string, unknown>): AuditEntry => ({
  action, resourceType: 'QuestionnaireResponse', resourceId: id, patientId: patientId ?? null, ...(detail ? { detail } : {}),
});

function assertInProgress(row: { id: string; status: string }): void {
  if (row.status !== 'in-progress') {
    throw new AppError('RESPONSE_SUBMITTED', `This response is ${row.status} and cannot be changed; amend it instead (POST /v1/questionnaire-responses/${row.id}/amend)`);
  }
}

async function assertPatient(ctx: Ctx, q: Querier, patientId: string): Promise<void> {
  const found = inScope(ctx.principal, patientId) && (await findLive(q, patients, ctx.tenantId, patientId));
  if (!found) throw validationFailed([{ path: '/patientId', message: 'no such patient' }]);
}

export function createResponse(ctx: Ctx, input: ResponseCreate): Promise<QuestionnaireResponse> {
  const id = newId();
  return auditedWrite(ctx, access('create', id, input.patientId), () => startResponse(ctx, id, input));
}

async function startResponse(ctx: Ctx, id: string, input: ResponseCreate): Promise<QuestionnaireResponse> {
  authorize(ctx.principal, 'responses:write');
  const now = ctx.now();
  const items = (input.item ?? []) as ResponseItem[];
  return cachePut(ctx, TYPE, await writeTx(ctx, async (q) => {
    await assertPatient(ctx, q, input.patientId);
    const view = await activeQuestionnaireFor(q, ctx.tenantId, input.questionnaireId);
    check(engineQuestionnaire(view), items, 'draft');
    const row = inserted({
      tenantId: ctx.tenantId, id, version: 1, questionnaireId: view.id, questionnaireVersion: view.version, patientId: input.patientId,
      status: 'in-progress', items, score: null, amends: null, amendReason: null, submittedAt: null, createdAt: now, updatedAt: now, deletedAt: null,
    });
    await q.insert(responses).values({ ...row, writeMeta: writeMeta(ctx, now, changed('created', row), access('create', id, row.patientId)) });
    return toResponse(row);
  }));
}

const fromDb = (ctx: Ctx, id: string) => async (q: Querier) => {
  const row = await findLive<ResponseRow>(q, responses, ctx.tenantId, id);
  return row && toResponse(row);
};

async function loadResponse(ctx: Ctx, id: string): Promise<QuestionnaireResponse> {
  authorize(ctx.principal, 'responses:read');
  return ownOrNotFound(ctx, await readThrough(ctx, TYPE, id, () => ctx.db.read(ctx.tenantId, fromDb(ctx, id))));
}

/** A read of one response, audited with the patient it belongs to. */
const readResponse = <T>(ctx: Ctx, id: string, fn: () => Promise<T>, patientOf: (r: T) => string) =>
  auditedRead(ctx, access('read', id), fn, (r) => [access('read', id, patientOf(r))]);

export const getResponse = (ctx: Ctx, id: string) => readResponse(ctx, id, () => loadResponse(ctx, id), (r) => r.patientId);

/** The response as a FHIR R4 QuestionnaireResponse (questionnaire by canonical URL when it has one). */
export function getResponseFhir(ctx: Ctx, id: string) {
  return readResponse(ctx, id, () => loadResponseFhir(ctx, id), (r) => r.patientId);
}

async function loadResponseFhir(ctx: Ctx, id: string): Promise<{ fhir: FhirQuestionnaireResponse; version: number; patientId: string }> {
  const r = await loadResponse(ctx, id);
  const fhir = fhirOfResponse(r, await pinnedQuestionnaire((fn) => ctx.db.read(ctx.tenantId, fn), ctx.tenantId, r.questionnaireId));
  return { fhir, version: r.version, patientId: r.patientId };
}

/** A response as a FHIR R4 QuestionnaireResponse; the questionnaire by canonical URL|version when it has one. */
export function fhirOfResponse(r: QuestionnaireResponse, q: Questionnaire): FhirQuestionnaireResponse {
  const canonical = typeof q.url === 'string' ? `${q.url}${q.version !== undefined ? `|${q.version}` : ''}` : `Questionnaire/${r.questionnaireId}`;
  return toFhirQuestionnaireResponse({
    id: r.id,
    questionnaire: canonical,
    status: r.status,
    patientId: r.patientId,
    authored: r.submittedAt ?? r.updatedAt,
    items: r.item as ResponseItem[],
    score: r.score ?? null,
  });
}

export function listResponses(ctx: Ctx, query: ResponseListQuery) {
  return auditedRead(ctx, access('read', null, undefined, { search: true }), () => findResponses(ctx, query), (page) =>
    page.data.map((r) => access('read', r.id, r.patientId)));
}

async function findResponses(ctx: Ctx, query: ResponseListQuery) {
  authorize(ctx.principal, 'responses:read');
  const { limit, afterId } = pageRequest(query);
  const own = patientLimit(ctx.principal);
  if (own === null || (own !== undefined && query.patientId !== undefined && query.patientId !== own)) return toPage([], limit);
  const patientId = own ?? query.patientId;
  const filters: (SQL | undefined)[] = [
    patientId ? eq(responses.patientId, patientId) : undefined,
    query.questionnaireId ? eq(responses.questionnaireId, query.questionnaireId) : undefined,
    query.status ? eq(responses.status, query.status) : undefined,
  ];
  const rows = await ctx.db.read(ctx.tenantId, (q) => listLive<ResponseRow>(q, responses, ctx.tenantId, limit, afterId, [and(...filters)]));
  return toPage(rows.map(toResponse), limit);
}

/**
 * A change of an in-progress response that the caller has read at `expected` (compare-and-set,
 * see conditional-change): `values` gets the response and the questionnaire it is pinned to.
 */
function changeInProgress(ctx: Ctx, id: string, expectedVersion: number | undefined, values: (r: QuestionnaireResponse, q: Questionnaire, now: Date) => ResponseChange) {
  return auditedWrite(ctx, access('update', id), () => changeIfInProgress(ctx, id, expectedVersion, values));
}

function changeIfInProgress(ctx: Ctx, id: string, expectedVersion: number | undefined, values: (r: QuestionnaireResponse, q: Questionnaire, now: Date) => ResponseChange) {
  authorize(ctx.principal, 'responses:write');
  const expected = requireVersion(expectedVersion);
  return changeIfCurrent<QuestionnaireResponse, ResponseChange>(ctx, {
    table: responses,
    type: TYPE,
    id,
    expected,
    load: fromDb(ctx, id),
    apply: async (current, env) => {
      const r = ownOrNotFound(ctx, current);
      assertInProgress(r);
      assertCurrent(r, expected, 'Questionnaire response');
      return values(r, await pinnedQuestionnaire(env.read, ctx.tenantId, r.questionnaireId), env.now);
    },
    changed: afterChange,
    audit: (r) => access('update', id, r.patientId),
    event: (r) => changed('updated', r),
  });
}

/** Saves a draft: the items replace the previous ones, validated in draft mode. */
export function saveDraft(ctx: Ctx, id: string, expectedVersion: number | undefined, input: ResponseDraft): Promise<QuestionnaireResponse> {
  const items = input.item as ResponseItem[];
  return changeInProgress(ctx, id, expectedVersion, (_r, q) => {
    check(q, items, 'draft');
    return { items };
  });
}

/** Submits the saved items: validated in submit mode, scored by the server; then it never changes. */
export function submitResponse(ctx: Ctx, id: string, expectedVersion: number | undefined): Promise<QuestionnaireResponse> {
  return changeInProgress(ctx, id, expectedVersion, (r, q, now) => ({ ...submitted(q, r.item as ResponseItem[]), status: 'completed', submittedAt: now }));
}

/** A new, submitted response that corrects a submitted one; the original stays as it was. */
export function amendResponse(ctx: Ctx, id: string, input: ResponseAmend): Promise<QuestionnaireResponse> {
  const amendmentId = newId();
  return auditedWrite(ctx, access('create', amendmentId, undefined, { amends: id }), () => amend(ctx, id, amendmentId, input));
}

async function amend(ctx: Ctx, id: string, newId: string, input: ResponseAmend): Promise<QuestionnaireResponse> {
  authorize(ctx.principal, 'responses:amend');
  return cachePut(ctx, TYPE, await writeTx(ctx, async (q) => {
    const original = await lockedInScope(ctx, q, id);
    if (original.status === 'in-progress') throw new AppError('INVALID_TRANSITION', 'Only a submitted response can be amended; change the draft with PATCH instead');
    const { items, score } = submitted(await pinnedQuestionnaire((fn) => fn(q), ctx.tenantId, original.questionnaireId), input.item as ResponseItem[]);
    const now = ctx.now();
    const row = inserted({
      tenantId: ctx.tenantId, id: newId, version: 1, questionnaireId: original.questionnaireId, questionnaireVersion: original.questionnaireVersion,
      patientId: original.patientId, status: 'amended', items, score, amends: original.id, amendReason: input.reason, submittedAt: now,
      createdAt: now, updatedAt: now, deletedAt: null,
    });
    await q.insert(responses).values({ ...row, writeMeta: writeMeta(ctx, now, changed('created', row), access('create', newId, row.patientId, { amends: id })) });
    return toResponse(row);
  }));
}

/** Only an in-progress response is deleted (softly). */
export function deleteResponse(ctx: Ctx, id: string, expectedVersion: number | undefined): Promise<void> {
  return auditedWrite(ctx, access('delete', id), async () => {
    authorize(ctx.principal, 'responses:write');
    const expected = requireVersion(expectedVersion);
    const deletedVersion = await writeTx(ctx, async (q) => {
      const row = await lockedInScope(ctx, q, id);
      assertInProgress(row);
      assertCurrent(row, expected, 'Questionnaire response');
      const now = ctx.now();
      return softDeleteLocked(q, responses, ctx.tenantId, id, now, { writeMeta: writeMeta(ctx, now, changed('deleted', row), access('delete', id, row.patientId)) });
    });
    await ctx.cache.tombstone(ctx.tenantId, TYPE, id, deletedVersion);
  });
}
