// /v1/patients/{id}/consents: record a decision, list the history, read one, and the decision in
// force per purpose. Handlers only translate; the service does the work.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Deps } from '../../container.js';
import type { StoredResponse } from '../idempotency/idempotency.js';
import { ctxOf, writeCtxOf } from '../../http/ctx.js';
import { IdParams } from '../../http/schemas.js';
import { Page } from '../shared/schemas.js';
import { Consent, ConsentInput, ConsentListQuery, ConsentParams, CurrentConsents } from './consents.schema.js';
import { currentConsents, getConsent, listConsents, recordConsent } from './consents.service.js';

const PATH = '/v1/patients/:id/consents';
const tags = ['consents'];

const locationOf = (c: Consent) => `/v1/patients/${c.patientId}/consents/${c.id}`;

/** How POST answers (also what an Idempotency-Key records for replays). Consents are immutable: no ETag. */
const created = (r: unknown): StoredResponse => ({ status: 201, headers: { location: locationOf(r as Consent) }, body: r });

export const consentsRoutes =
  (deps: Deps): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.post(
      PATH,
      {
        schema: {
          tags,
          summary: 'Record a consent decision (granted or revoked) for a purpose; a change of mind is a new record. The patient itself or staff',
          params: IdParams,
          body: ConsentInput,
          response: { 201: Consent },
        },
      },
      async (req, reply) => {
        const consent = await recordConsent(writeCtxOf(deps, req, created), req.params.id, req.body);
        return reply.code(201).header('Location', locationOf(consent)).send(consent);
      },
    );
    app.get(
      PATH,
      { schema: { tags, summary: 'The patient’s consent history, oldest first; ?purpose= filter', params: IdParams, querystring: ConsentListQuery, response: { 200: Page(Consent) } } },
      async (req) => listConsents(ctxOf(deps, req), req.params.id, req.query),
    );
    app.get(
      `${PATH}/current`,
      { schema: { tags, summary: 'The decision in force for every purpose (decision null: never decided, i.e. no consent)', params: IdParams, response: { 200: CurrentConsents } } },
      async (req) => currentConsents(ctxOf(deps, req), req.params.id),
    );
    app.get(
      `${PATH}/:consentId`,
      { schema: { tags, summary: 'One consent decision', params: ConsentParams, response: { 200: Consent } } },
      async (req) => getConsent(ctxOf(deps, req), req.params.id, req.params.consentId),
    );
  };
