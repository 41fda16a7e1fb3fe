// /v1/audit-events (search, export) and /v1/patients/{id}/access-log. Handlers only translate;
// the service authorizes, reads and audits.
import { Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Deps } from '../../container.js';
import { ctxOf } from '../../http/ctx.js';
import { IdParams } from '../../http/schemas.js';
import { Page } from '../shared/schemas.js';
import { AccessLogQuery, AuditEvent, AuditEventListQuery, AuditExportQuery, ExportLine } from './audit-events.schema.js';
import { exportAuditEvents, listAuditEvents, patientAccessLog } from './audit-events.service.js';

const tags = ['audit-events'];
export const NDJSON = 'application/x-ndjson';

export const auditEventsRoutes =
  (deps: Deps): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/v1/audit-events',
      {
        schema: {
          tags,
          summary: 'Search the audit trail (admin, manager): patientId, actor, action, resourceType, resourceId, outcome, from (inclusive), to (exclusive); in id (≈ time) order',
          querystring: AuditEventListQuery,
          response: { 200: Page(AuditEvent) },
        },
      },
      async (req, reply) => reply.header('Cache-Control', 'no-store').send(await listAuditEvents(ctxOf(deps, req), req.query)),
    );

    app.get(
      '/v1/audit-events/export',
      {
        // A HEAD would start (and audit) an export only to throw the stream away.
        exposeHeadRoute: false,
        schema: {
          tags,
          summary: 'Export the audit trail (admin, manager) as signed NDJSON, streamed: one record per line (?format=fhir: FHIR R4 AuditEvent), then a trailer with an HMAC over the whole stream; same filters as the search',
          querystring: AuditExportQuery,
          response: {
            200: {
              description: 'NDJSON (application/x-ndjson): one JSON document per line, records in id order, the signed trailer last; a stream without a trailer was cut off',
              content: { [NDJSON]: { schema: ExportLine } },
            },
          },
        },
      },
      async (req, reply) => {
        const { format, lines } = await exportAuditEvents(ctxOf(deps, req), req.query);
        return reply
          .header('Content-Type', NDJSON)
          .header('Cache-Control', 'no-store')
          .header('Content-Disposition', `attachment; filename="audit-events${format === 'fhir' ? '.fhir' : ''}.ndjson"`)
          .send(Readable.from(lines) as never); // a stream: not serialized against the schema
      },
    );

    app.get(
      '/v1/patients/:id/access-log',
      {
        schema: {
          tags: ['patients', ...tags],
          summary: 'Who read or changed this patient (accounting of disclosures): staff roles, and the patient itself; from (inclusive), to (exclusive); in time order',
          params: IdParams,
          querystring: AccessLogQuery,
          response: { 200: Page(AuditEvent) },
        },
      },
      async (req, reply) => reply.header('Cache-Control', 'no-store').send(await patientAccessLog(ctxOf(deps, req), req.params.id, req.query)),
    );
  };
