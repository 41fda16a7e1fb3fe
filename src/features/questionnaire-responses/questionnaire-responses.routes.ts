// /v1/questionnaire-responses: start, read (ours or ?format=fhir), list, save a draft (PATCH),
// submit, amend, delete a draft. Handlers only translate; the service does the work.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { FastifySchemaCompiler } from 'fastify';
import type { Deps } from '../../container.js';
import { coercingAjv, strictAjv } from '../../platform/validation.js';
import { changedResponse, createdResponse, ifMatchVersion, sendCreated, sendResource } from '../../http/conditional.js';
import { ctxOf, listCtxOf, writeCtxOf } from '../../http/ctx.js';
import { IdParams, IfMatchHeaders } from '../../http/schemas.js';
import { Page } from '../shared/schemas.js';
import { etag } from '../shared/versioning.js';
import {
  FhirQuestionnaireResponseSchema,
  QuestionnaireResponse,
  ResponseAmend,
  ResponseCreate,
  ResponseDraft,
  ResponseGetQuery,
  ResponseListQuery,
} from './questionnaire-responses.schema.js';
import {
  amendResponse,
  createResponse,
  deleteResponse,
  getResponse,
  getResponseFhir,
  listResponses,
  saveDraft,
  submitResponse,
} from './questionnaire-responses.service.js';

const PATH = '/v1/questionnaire-responses';
const ITEM = `${PATH}/:id`;
const tags = ['questionnaire-responses'];

/** Submit takes no body; an empty JSON object is accepted too (and nothing else). */
const SubmitBody = Type.Object({}, { additionalProperties: false, description: 'No body, or an empty object' });
const optionalBody: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) => {
  if (httpPart !== 'body') return coercingAjv.compile(schema as object);
  const validate = strictAjv.compile(schema as object);
  const check = (data: unknown) => {
    if (data === undefined || data === null) return true; // no body
    const ok = validate(data);
    check.errors = validate.errors;
    return ok;
  };
  check.errors = null as typeof validate.errors;
  return check;
};

const created = createdResponse(PATH);

export const questionnaireResponsesRoutes =
  (deps: Deps): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.post(
      PATH,
      { schema: { tags, summary: 'Start a response (in-progress) on an active questionnaire for a patient; item, if sent, is checked as a draft', body: ResponseCreate, response: { 201: QuestionnaireResponse } } },
      async (req, reply) => sendCreated(reply, PATH, await createResponse(writeCtxOf(deps, req, created), req.body)),
    );
    app.get(
      PATH,
      { schema: { tags, summary: 'List responses: patientId, questionnaireId, status filters (a patient sees only its own)', querystring: ResponseListQuery, response: { 200: Page(QuestionnaireResponse) } } },
      async (req) => listResponses(await listCtxOf(deps, req), req.query),
    );
    app.get(
      ITEM,
      {
        schema: {
          tags,
          summary: 'Read a response; ?format=fhir returns it as a FHIR R4 QuestionnaireResponse',
          params: IdParams,
          querystring: ResponseGetQuery,
          response: { 200: Type.Union([QuestionnaireResponse, FhirQuestionnaireResponseSchema]) },
        },
      },
      async (req, reply) => {
        const ctx = ctxOf(deps, req);
        if (req.query.format === 'fhir') {
          const { fhir, version } = await getResponseFhir(ctx, req.params.id);
          return reply.header('ETag', etag(version)).send(fhir);
        }
        return sendResource(reply, await getResponse(ctx, req.params.id));
      },
    );
    app.patch(
      ITEM,
      {
        schema: {
          tags,
          summary: 'Save a draft: replaces the items of an in-progress response (If-Match required); 409 RESPONSE_SUBMITTED once submitted',
          consumes: ['application/json', 'application/merge-patch+json'],
          params: IdParams,
          headers: IfMatchHeaders,
          body: ResponseDraft,
          response: { 200: QuestionnaireResponse },
        },
      },
      async (req, reply) => sendResource(reply, await saveDraft(writeCtxOf(deps, req, changedResponse), req.params.id, ifMatchVersion(req), req.body)),
    );
    app.post(
      `${ITEM}/submit`,
      { validatorCompiler: optionalBody, schema: { tags, summary: 'Submit a response (If-Match required): checked against its questionnaire, scored by the server, then immutable', params: IdParams, headers: IfMatchHeaders, body: SubmitBody, response: { 200: QuestionnaireResponse } } },
      async (req, reply) => sendResource(reply, await submitResponse(writeCtxOf(deps, req, changedResponse), req.params.id, ifMatchVersion(req))),
    );
    app.post(
      `${ITEM}/amend`,
      { schema: { tags, summary: 'Amend a submitted response: creates a new, submitted response (status amended) that names the original, which stays unchanged', params: IdParams, body: ResponseAmend, response: { 201: QuestionnaireResponse } } },
      async (req, reply) => sendCreated(reply, PATH, await amendResponse(writeCtxOf(deps, req, created), req.params.id, req.body)),
    );
    app.delete(
      ITEM,
      { schema: { tags, summary: 'Delete an in-progress response (soft; If-Match required); submitted ones are never deleted', params: IdParams, headers: IfMatchHeaders, response: { 204: { type: 'null', description: 'Deleted' } } } },
      async (req, reply) => {
        await deleteResponse(ctxOf(deps, req), req.params.id, ifMatchVersion(req));
        return reply.code(204).send(null);
      },
    );
  };
