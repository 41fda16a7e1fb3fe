// POST /v1/patients/{id}/erase: the right to erasure. The handler only translates.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Deps } from '../../container.js';
import { ifMatchVersion } from '../../http/conditional.js';
import { writeCtxOf } from '../../http/ctx.js';
import { IdParams, IfMatchHeaders } from '../../http/schemas.js';
import { ErasureReport, ErasureRequest } from './erasure.schema.js';
import { erasePatient } from './erasure.service.js';

const answered = (r: unknown) => ({ status: 200, headers: {}, body: r });

export const erasureRoutes =
  (deps: Deps): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.post(
      '/v1/patients/:id/erase',
      {
        schema: {
          tags: ['patients'],
          summary:
            "Erase a patient (admin; If-Match): its rows, responses, consents, stored idempotent answers and cache entries are removed, and every route answers 404 for it from then on. Interrupted? Ask again: it resumes. Asked again after completion: the same report. Audit records stay, naming the patient's id only.",
          params: IdParams,
          headers: IfMatchHeaders,
          body: ErasureRequest,
          response: { 200: ErasureReport },
        },
      },
      async (req) => erasePatient(writeCtxOf(deps, req, answered), req.params.id, ifMatchVersion(req), req.body),
    );
  };
