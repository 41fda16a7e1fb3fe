// GET /v1/patients/{id}/export: the whole record of one patient, as our JSON (default) or, with
// ?format=fhir, as a FHIR R4 Bundle sent as application/fhir+json. The handler only translates.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Deps } from '../../container.js';
import { ctxOf } from '../../http/ctx.js';
import { IdParams } from '../../http/schemas.js';
import { ExportQuery, FhirBundle, PatientExport } from './export.schema.js';
import { exportPatient } from './export.service.js';

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

export const patientExportRoutes =
  (deps: Deps): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/v1/patients/:id/export',
      {
        schema: {
          tags: ['patients'],
          summary:
            'Export everything held about a patient: the patient, all its questionnaire responses (every status) and consent decisions. ' +
            'JSON by default; ?format=fhir returns a FHIR R4 Bundle (type collection) as application/fhir+json. ' +
            'Admins, managers and clinicians; a patient token for its own record (another patient is 404)',
          params: IdParams,
          querystring: ExportQuery,
          response: {
            200: {
              description: 'The export: PatientExport (application/json) or, with format=fhir, a FHIR R4 Bundle (application/fhir+json)',
              content: { 'application/json': { schema: PatientExport }, 'application/fhir+json': { schema: FhirBundle } },
            },
          },
        },
      },
      async (req, reply) => {
        const result = await exportPatient(ctxOf(deps, req), req.params.id, req.query.format ?? 'json');
        if (result.format === 'fhir') void reply.type(FHIR_JSON);
        return reply.send(result.document);
      },
    );
  };
