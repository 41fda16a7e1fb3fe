// The REST shape shared by versioned resources: POST, GET list, GET one, PATCH (merge patch,
// If-Match), DELETE (soft, If-Match). Handlers only translate; the service does the work.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { TSchema } from 'typebox';
import type { Deps } from '../container.js';
import type { Ctx } from '../context.js';
import { Page } from '../features/shared/schemas.js';
import { changedResponse, createdResponse, ifMatchVersion, sendCreated, sendResource } from './conditional.js';
import { ctxOf, listCtxOf, writeCtxOf } from './ctx.js';
import { IdParams, IfMatchHeaders } from './schemas.js';

type Versioned = { id: string; version: number };

export interface CrudService<T extends Versioned> {
  create(ctx: Ctx, input: never): Promise<T>;
  list(ctx: Ctx, query: never): Promise<{ data: T[]; page: { limit: number; nextCursor: string | null } }>;
  get(ctx: Ctx, id: string): Promise<T>;
  update(ctx: Ctx, id: string, expectedVersion: number | undefined, patch: object): Promise<T>;
  remove(ctx: Ctx, id: string, expectedVersion: number | undefined): Promise<void>;
}

export interface CrudOptions<T extends Versioned> {
  path: string;
  noun: string;
  listSummary: string;
  schemas: { resource: TSchema; input: TSchema; patch: TSchema; query: TSchema };
  service: CrudService<T>;
}

export function crudRoutes<T extends Versioned>(deps: Deps, o: CrudOptions<T>): FastifyPluginAsyncTypebox {
  const { path, noun, service: s } = o;
  const { resource, input, patch, query } = o.schemas;
  const tags = [path.split('/').pop()!];
  const item = `${path}/:id`;
  return async (app) => {
    const created = createdResponse(path);

    app.post(path, { schema: { tags, summary: `Create a ${noun}`, body: input, response: { 201: resource } } }, async (req, reply) =>
      sendCreated(reply, path, await s.create(writeCtxOf(deps, req, created), req.body as never)),
    );
    app.get(path, { schema: { tags, summary: o.listSummary, querystring: query, response: { 200: Page(resource) } } }, async (req) =>
      s.list(await listCtxOf(deps, req), req.query as never),
    );
    app.get(item, { schema: { tags, summary: `Read a ${noun}`, params: IdParams, response: { 200: resource } } }, async (req, reply) =>
      sendResource(reply, await s.get(ctxOf(deps, req), req.params.id)),
    );
    app.patch(
      item,
      { schema: { tags, summary: `Change a ${noun} (JSON merge patch; If-Match required)`, consumes: ['application/merge-patch+json', 'application/json'], params: IdParams, headers: IfMatchHeaders, body: patch, response: { 200: resource } } },
      async (req, reply) => sendResource(reply, await s.update(writeCtxOf(deps, req, changedResponse), req.params.id, ifMatchVersion(req), req.body as object)),
    );
    app.delete(
      item,
      { schema: { tags, summary: `Delete a ${noun} (soft; If-Match required)`, params: IdParams, headers: IfMatchHeaders, response: { 204: { type: 'null', description: 'Deleted' } } } },
      async (req, reply) => {
        await s.remove(ctxOf(deps, req), req.params.id, ifMatchVersion(req));
        return reply.code(204).send(null);
      },
    );
  };
}
