// ETag / If-Match on the wire. The rule that a write needs a version lives in the service layer
// (requireVersion); this only reads the header.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../errors.js';
import { etag } from '../features/shared/versioning.js';

const IF_MATCH = /^\s*(?:W\/)?"([1-9][0-9]{0,9})"\s*$/;

/** The version named by If-Match, undefined without the header; 400 for anything but one version ETag. */
export function ifMatchVersion(request: FastifyRequest): number | undefined {
  const raw = request.headers['if-match'];
  if (raw === undefined) return undefined;
  const m = IF_MATCH.exec(raw);
  if (!m) throw new AppError('MALFORMED_REQUEST', 'If-Match must be one ETag as returned by this API, e.g. W/"3"');
  return Number(m[1]);
}

export function sendResource<T extends { version: number }>(reply: FastifyReply, resource: T, status = 200) {
  return reply.code(status).header('ETag', etag(resource.version)).send(resource);
}

export function sendCreated<T extends { id: string; version: number }>(reply: FastifyReply, collectionPath: string, resource: T) {
  return sendResource(reply.header('Location', `${collectionPath}/${resource.id}`), resource, 201);
}

type Versioned = { id: string; version: number };

/**
 * How sendCreated / sendResource answer, as data: what an Idempotency-Key records so that a replay
 * has the same status, headers and body as the first answer.
 */
export const createdResponse = (collectionPath: string) => (r: unknown) => {
  const { id, version } = r as Versioned;
  return { status: 201, headers: { location: `${collectionPath}/${id}`, etag: etag(version) }, body: r };
};

export const changedResponse = (r: unknown) => ({ status: 200, headers: { etag: etag((r as Versioned).version) }, body: r });
