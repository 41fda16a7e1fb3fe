// /v1/questionnaires: the CRUD shape of http/crud-routes.ts, with two differences. POST takes a
// query (allowExternalValueSets), and the POST and PATCH bodies are validated by the service, not
// here: a definition's shape and its rules are checked in one pass there, so a 400 lists every
// problem at once (and a Bundle is only checked once it is folded into a Questionnaire). The body
// schemas below document the shape in OpenAPI.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifySchemaCompiler } from 'fastify';
import type { Deps } from '../../container.js';
import { changedResponse, createdResponse, ifMatchVersion, sendCreated, sendResource } from '../../http/conditional.js';
import { ctxOf, listCtxOf, writeCtxOf } from '../../http/ctx.js';
import { IdParams, IfMatchHeaders } from '../../http/schemas.js';
import { coercingAjv } from '../../platform/validation.js';
import { Page } from '../shared/schemas.js';
import {
  Questionnaire,
  QuestionnaireCreateQuery,
  QuestionnaireImport,
  QuestionnaireListQuery,
  QuestionnairePatch,
} from './questionnaires.schema.js';
import { createQuestionnaire, deleteQuestionnaire, getQuestionnaire, listQuestionnaires, updateQuestionnaire } from './questionnaires.service.js';

const PATH = '/v1/questionnaires';
const ITEM = `${PATH}/:id`;
const tags = ['questionnaires'];

/** Query, params and headers as everywhere (coerced strings); the body is left to the service. */
const bodyByService: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) => (httpPart === 'body' ? () => true : coercingAjv.compile(schema as object));

const created = createdResponse(PATH);

export const questionnairesRoutes =
  (deps: Deps): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.post(
      PATH,
      {
        validatorCompiler: bodyByService,
        schema: {
          tags,
          summary: 'Import a questionnaire: a FHIR R4 Questionnaire, or a Bundle with one and the ValueSets/CodeSystems it references',
          querystring: QuestionnaireCreateQuery,
          body: QuestionnaireImport,
          response: { 201: Questionnaire },
        },
      },
      async (req, reply) => sendCreated(reply, PATH, await createQuestionnaire(writeCtxOf(deps, req, created), req.body, req.query)),
    );
    app.get(
      PATH,
      { schema: { tags, summary: 'List questionnaires: status, title (substring), url filters (patients see no drafts)', querystring: QuestionnaireListQuery, response: { 200: Page(Questionnaire) } } },
      // The service speaks fhir-types.ts, looser than the schema that validated what it returns.
      async (req) => (await listQuestionnaires(await listCtxOf(deps, req), req.query)) as never,
    );
    app.get(ITEM, { schema: { tags, summary: 'Read a questionnaire', params: IdParams, response: { 200: Questionnaire } } }, async (req, reply) =>
      sendResource(reply, await getQuestionnaire(ctxOf(deps, req), req.params.id)),
    );
    app.patch(
      ITEM,
      {
        validatorCompiler: bodyByService,
        schema: {
          tags,
          summary: 'Change a questionnaire (JSON merge patch; If-Match required): a draft freely, otherwise only its status along draft → active → retired',
          consumes: ['application/merge-patch+json', 'application/json'],
          params: IdParams,
          headers: IfMatchHeaders,
          body: QuestionnairePatch,
          response: { 200: Questionnaire },
        },
      },
      async (req, reply) => sendResource(reply, await updateQuestionnaire(writeCtxOf(deps, req, changedResponse), req.params.id, ifMatchVersion(req), req.body)),
    );
    app.delete(
      ITEM,
      { schema: { tags, summary: 'Delete a draft questionnaire (soft; If-Match required); active ones are retired instead', params: IdParams, headers: IfMatchHeaders, response: { 204: { type: 'null', description: 'Deleted' } } } },
      async (req, reply) => {
        await deleteQuestionnaire(ctxOf(deps, req), req.params.id, ifMatchVersion(req));
        return reply.code(204).send(null);
      },
    );
  };
