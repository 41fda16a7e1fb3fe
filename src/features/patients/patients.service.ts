import { newId } from '../../platform/ids.js';
import { authorize, patientScope } from '../../auth/permissions.js';
import type { Ctx } from '../../context.js';
import { AppError, notFound, OutOfScope, validationFailed, type ErrorDetail } from '../../errors.js';
import { auditedRead, auditedWrite } from '../audit/audited.js';
import { writeMeta } from '../shared/write-meta.js';
import type { AuditAction, AuditEntry } from '../audit/audit-record.js';
import { assertValid } from '../../platform/validation.js';
import { mergePatch } from '../shared/merge-patch.js';
import { cachePut, readThrough } from '../shared/resource-cache.js';
import { writeOne, writeTx } from '../shared/write-tx.js';
import { changeIfCurrent } from '../shared/conditional-change.js';
import type { Querier } from '../../platform/db/db.js';
import { DecryptionError } from '../../platform/crypto/index.js';
import { pageRequest, toPage } from '../shared/pagination.js';
import { findLive, insertRow, softDeleteLocked } from '../shared/versioned-repo.js';
import { assertCurrent, iso, requireVersion } from '../shared/versioning.js';
import { nameTokens, searchPrefixes } from './name-search.js';
import { identifierMatches, revealIdentifier, sealIdentifier } from './patients.crypto.js';
import { listPatients as listRows, type PatientFilters } from './patients.repo.js';
import { PatientInput, type Patient, type PatientListQuery, type StoredIdentifier } from './patients.schema.js';
import { patients, type PatientRow } from './patients.table.js';

/** A patient as stored and cached: sensitive identifiers encrypted (patients.crypto). */
type StoredPatient = Omit<Patient, 'identifiers'> & { identifiers: StoredIdentifier[] };

const toStored = (r: PatientRow): StoredPatient => ({
  id: r.id,
  version: r.version,
  name: r.name,
  birthDate: r.birthDate,
  gender: r.gender,
  identifiers: r.identifiers,
  ...(r.email !== null ? { email: r.email } : {}),
  ...(r.phone !== null ? { phone: r.phone } : {}),
  ...(r.address ? { address: r.address } : {}),
  active: r.active,
  createdAt: iso(r.createdAt),
  updatedAt: iso(r.updatedAt),
});

/**
 * The patient as the API returns it: everything here works on the stored form, and only what a
 * function returns to its caller is decrypted. A value that does not decrypt means a key is
 * missing from the ring or the row was altered: logged without the value, answered as a plain 500.
 */
function reveal(ctx: Ctx, p: StoredPatient): Patient {
  try {
    return { ...p, identifiers: p.identifiers.map((i) => revealIdentifier(ctx.keys, ctx.tenantId, i)) };
  } catch (err) {
    if (!(err instanceof DecryptionError)) throw err;
    // DecryptionError messages name a key id at most, never the value.
    ctx.log.error({ resourceType: 'Patient', resourceId: p.id, reason: err.reason, problem: err.message }, 'a stored patient identifier could not be decrypted');
    throw new AppError('INTERNAL');
  }
}

/** A patients row as the API returns it (for modules that read rows themselves, e.g. exports). */
export const patientOfRow = (ctx: Ctx, r: PatientRow): Patient => reveal(ctx, toStored(r));

const inputOf = ({ id: _i, version: _v, createdAt: _c, updatedAt: _u, ...input }: Patient): PatientInput => input;

const EARLIEST_BIRTH_DATE = '1850-01-01';

/** Rules beyond the schema. "Today" is taken in the earliest time zone (UTC+14), so a baby born today anywhere is accepted. */
function checkRules(ctx: Ctx, input: PatientInput): void {
  const problems: ErrorDetail[] = [];
  const latest = new Date(ctx.now().getTime() + 14 * 3600_000).toISOString().slice(0, 10);
  if (input.birthDate > latest) problems.push({ path: '/birthDate', message: 'must not be in the future' });
  if (input.birthDate < EARLIEST_BIRTH_DATE) problems.push({ path: '/birthDate', message: `must not be before ${EARLIEST_BIRTH_DATE}` });
  if (problems.length > 0) throw validationFailed(problems);
}

const columnsOf = (ctx: Ctx, i: PatientInput) => ({
  name: i.name,
  nameTokens: nameTokens(i.name),
  birthDate: i.birthDate,
  gender: i.gender,
  identifiers: (i.identifiers ?? []).map((id) => sealIdentifier(ctx.keys, ctx.tenantId, id)),
  email: i.email ?? null,
  phone: i.phone ?? null,
  address: i.address ?? null,
  active: i.active ?? true,
});

/** A patient principal may only ever see its own record; any other id is "not found". */
function assertInScope(ctx: Ctx, id: string): void {
  const own = patientScope(ctx.principal);
  if (own !== undefined && own !== id) throw new OutOfScope('Patient');
}

/** The audit entry of an access to patient `id`. */
const access = (action: AuditAction, id: string): AuditEntry => ({ action, resourceType: 'Patient', resourceId: id, patientId: id });
/** The event of a change of patient `id`. */
export const changed = (kind: 'created' | 'updated' | 'deleted', id: string) => ({ type: `patient.${kind}`, patientId: id });

export function createPatient(ctx: Ctx, input: PatientInput): Promise<Patient> {
  const id = newId();
  return auditedWrite(ctx, access('create', id), async () => {
    authorize(ctx.principal, 'patients:write');
    checkRules(ctx, input);
    const now = ctx.now();
    const row = { tenantId: ctx.tenantId, id, version: 1, ...columnsOf(ctx, input), createdAt: now, updatedAt: now };
    const stored = toStored({ ...row, deletedAt: null });
    // The answer (and what an Idempotency-Key records) has the identifiers as given.
    const created = await writeOne(ctx, async (q) => {
      await insertRow(q, patients, { ...row, writeMeta: writeMeta(ctx, now, changed('created', id), access('create', id)) });
      return { ...stored, identifiers: input.identifiers ?? [] };
    });
    await cachePut(ctx, 'patients', stored);
    return created;
  });
}

const fromDb = (ctx: Ctx, id: string) => async (q: Querier) => {
  const row = await findLive<PatientRow>(q, patients, ctx.tenantId, id);
  return row && toStored(row);
};

export function getPatient(ctx: Ctx, id: string): Promise<Patient> {
  return auditedRead(ctx, access('read', id), async () => {
    authorize(ctx.principal, 'patients:read');
    assertInScope(ctx, id);
    const found = await readThrough(ctx, 'patients', id, () => ctx.db.read(ctx.tenantId, fromDb(ctx, id)));
    if (!found) throw notFound('Patient');
    return reveal(ctx, found);
  });
}

function parseIdentifier(ctx: Ctx, token: string): PatientFilters['identifier'] {
  const bar = token.indexOf('|');
  const [system, value] = bar < 0 ? [undefined, token] : [token.slice(0, bar), token.slice(bar + 1)];
  if (!value) throw validationFailed([{ path: '/query/identifier', message: 'must be system|value or value' }]);
  return identifierMatches(ctx.keys, ctx.tenantId, system || undefined, value);
}

export function listPatients(ctx: Ctx, query: PatientListQuery) {
  const search: AuditEntry = { action: 'read', resourceType: 'Patient', detail: { search: true } };
  return auditedRead(ctx, search, () => findPatients(ctx, query), (page) => page.data.map((p) => access('read', p.id)));
}

async function findPatients(ctx: Ctx, query: PatientListQuery) {
  authorize(ctx.principal, 'patients:read');
  const { limit, afterId } = pageRequest(query);
  const filters: PatientFilters = {
    onlyId: patientScope(ctx.principal),
    namePrefixes: query.name === undefined ? undefined : searchPrefixes(query.name),
    birthDate: query.birthDate,
    identifier: query.identifier === undefined ? undefined : parseIdentifier(ctx, query.identifier),
  };
  if (filters.namePrefixes?.length === 0) throw validationFailed([{ path: '/query/name', message: 'must contain a letter or digit' }]);
  const rows = await ctx.db.read(ctx.tenantId, (q) => listRows(q, ctx.tenantId, limit, afterId, filters));
  return toPage(rows.map((r) => reveal(ctx, toStored(r))), limit);
}

export function updatePatient(ctx: Ctx, id: string, expectedVersion: number | undefined, patch: object): Promise<Patient> {
  return auditedWrite(ctx, access('update', id), () => changePatient(ctx, id, expectedVersion, patch));
}

function changePatient(ctx: Ctx, id: string, expectedVersion: number | undefined, patch: object): Promise<Patient> {
  authorize(ctx.principal, 'patients:write');
  assertInScope(ctx, id);
  const expected = requireVersion(expectedVersion);
  // The change starts from the stored form (cache, recent-versions or row), patches the revealed
  // patient and encrypts again: each write re-encrypts under the primary key.
  return changeIfCurrent<StoredPatient, ReturnType<typeof columnsOf>, Patient>(ctx, {
    table: patients,
    type: 'patients',
    id,
    expected,
    load: fromDb(ctx, id),
    apply: (current) => {
      const next = mergePatch(inputOf(reveal(ctx, assertCurrent(current, expected, 'Patient'))), patch);
      assertValid<PatientInput>(PatientInput, next);
      checkRules(ctx, next);
      return columnsOf(ctx, next);
    },
    // columnsOf() sets every column a change can change.
    changed: (current, columns, version, now) =>
      toStored({ tenantId: ctx.tenantId, id, version, ...columns, createdAt: new Date(current.createdAt), updatedAt: now, deletedAt: null }),
    present: (stored) => reveal(ctx, stored),
    audit: () => access('update', id),
    event: () => changed('updated', id),
  });
}

export function deletePatient(ctx: Ctx, id: string, expectedVersion: number | undefined): Promise<void> {
  return auditedWrite(ctx, access('delete', id), async () => {
    authorize(ctx.principal, 'patients:delete');
    assertInScope(ctx, id);
    const expected = requireVersion(expectedVersion);
    const deletedVersion = await writeTx(ctx, async (q) => {
      assertCurrent(await findLive<PatientRow>(q, patients, ctx.tenantId, id, true), expected, 'Patient');
      const now = ctx.now();
      return softDeleteLocked(q, patients, ctx.tenantId, id, now, { writeMeta: writeMeta(ctx, now, changed('deleted', id), access('delete', id)) });
    });
    await ctx.cache.tombstone(ctx.tenantId, 'patients', id, deletedVersion);
  });
}
