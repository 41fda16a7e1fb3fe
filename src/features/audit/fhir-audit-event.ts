// An audit record as a FHIR R4 AuditEvent (https://hl7.org/fhir/R4/auditevent.html), for the
// `?format=fhir` export. Only FHIR elements, no empty strings or arrays (FHIR JSON forbids them).
//
// Mapping (the reasons are in README "Audit APIs"):
// - type: DICOM 110106 "Export" for an export; otherwise audit-event-type `rest` ("RESTful
//   Operation"), with subtype restful-interaction read | search-type | create | update | delete
//   (erase → delete, consent → update). Our own action is always kept as a second subtype coding.
// - action: create C, read R, update U, delete D, erase D, consent U, export R (as DICOM/IHE ATNA
//   code an export: the exporting system reads the data).
// - outcome: success 0; denied (role or patient scope) 4; error 4 when its code is a client error
//   (4xx, e.g. VALIDATION_FAILED) and 8 when it is a server error (5xx). 12 (major failure) is
//   never used: no failure here makes the service unavailable.
// - agent: the token subject as who.identifier, requestor true, roles as role, the client IP as
//   network (type 2 = IP address), the user agent in an extension.
// - source: observer "Carebase", site = the tenant id, type 4 (Application Server).
// - entity: the resource (Patient/<id>, QuestionnaireResponse/<id>…; a search: a reference by type
//   only, role 24 Query), the patient when it is not the resource itself (type 1 Person, role 1
//   Patient), and the request ID as in IHE BALP (entity type XrequestId). `detail` codes and counts
//   become entity.detail.
// - The record's HMAC and key id go in an extension, so the stream signature of the export and the
//   record's own signature are both kept.
import { ERRORS, type ErrorCode } from '../../errors.js';
import type { AuditEvent } from './audit-events.schema.js';

const BASE = 'https://carebase.example/fhir';
export const AUDIT_ACTION_SYSTEM = `${BASE}/CodeSystem/audit-action`;
export const ROLE_SYSTEM = `${BASE}/CodeSystem/role`;
export const RECORD_SIGNATURE_EXTENSION_URL = `${BASE}/StructureDefinition/auditevent-record-signature`;
export const USER_AGENT_EXTENSION_URL = `${BASE}/StructureDefinition/auditevent-user-agent`;

const AUDIT_EVENT_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-event-type';
const DICOM = 'http://dicom.nema.org/resources/ontology/DCM';
const RESTFUL_INTERACTION = 'http://hl7.org/fhir/restful-interaction';
const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';
const SOURCE_TYPE = 'http://terminology.hl7.org/CodeSystem/security-source-type';
const BALP_ENTITY_TYPE = 'https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType';

interface Coding {
  system: string;
  code: string;
  display?: string;
}
type Json = Record<string, unknown>;

export interface FhirAuditEvent {
  resourceType: 'AuditEvent';
  id: string;
  extension: Json[];
  type: Coding;
  subtype?: Coding[];
  action: 'C' | 'R' | 'U' | 'D' | 'E';
  recorded: string;
  outcome: '0' | '4' | '8' | '12';
  outcomeDesc?: string;
  agent: Json[];
  source: Json;
  entity?: Json[];
}

const ACTION_CODES: Record<AuditEvent['action'], FhirAuditEvent['action']> = {
  create: 'C', read: 'R', update: 'U', delete: 'D', erase: 'D', consent: 'U', export: 'R',
};

const INTERACTIONS: Partial<Record<AuditEvent['action'], string>> = {
  create: 'create', update: 'update', delete: 'delete', erase: 'delete', consent: 'update',
};

const detailOf = (r: AuditEvent) => (r.detail ?? {}) as Record<string, unknown>;
const present = <T>(v: T | null | undefined | ''): v is T => v !== null && v !== undefined && v !== '';

function typeOf(r: AuditEvent): { type: Coding; subtype: Coding[] } {
  const ours: Coding = { system: AUDIT_ACTION_SYSTEM, code: r.action };
  if (r.action === 'export') return { type: { system: DICOM, code: '110106', display: 'Export' }, subtype: [ours] };
  const interaction = r.action === 'read' ? (present(r.resource.id) ? 'read' : 'search-type') : INTERACTIONS[r.action]!;
  return { type: { system: AUDIT_EVENT_TYPE, code: 'rest', display: 'RESTful Operation' }, subtype: [{ system: RESTFUL_INTERACTION, code: interaction }, ours] };
}

function outcomeOf(r: AuditEvent): { outcome: FhirAuditEvent['outcome']; outcomeDesc?: string } {
  if (r.outcome === 'success') return { outcome: '0' };
  const detail = detailOf(r);
  const code = typeof detail.code === 'string' ? detail.code : undefined;
  const desc = code ?? r.outcome;
  if (r.outcome === 'denied') return { outcome: '4', outcomeDesc: desc };
  const status = code && code in ERRORS ? ERRORS[code as ErrorCode].status : 500;
  return { outcome: status < 500 ? '4' : '8', outcomeDesc: desc };
}

const detailValue = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

function entitiesOf(r: AuditEvent): Json[] {
  const out: Json[] = [];
  const isPatient = r.resource.type === 'Patient';
  if (present(r.resource.id)) {
    out.push({
      what: { reference: `${r.resource.type}/${r.resource.id}` },
      type: isPatient ? { system: ENTITY_TYPE, code: '1', display: 'Person' } : { system: ENTITY_TYPE, code: '2', display: 'System Object' },
      role: isPatient ? { system: OBJECT_ROLE, code: '1', display: 'Patient' } : { system: OBJECT_ROLE, code: '4', display: 'Domain Resource' },
    });
  } else {
    const search = detailOf(r).search === true;
    out.push({
      what: { type: r.resource.type },
      type: { system: ENTITY_TYPE, code: '2', display: 'System Object' },
      role: search ? { system: OBJECT_ROLE, code: '24', display: 'Query' } : { system: OBJECT_ROLE, code: '4', display: 'Domain Resource' },
    });
  }
  const details = Object.entries(detailOf(r))
    .filter(([k, v]) => k !== '' && v !== null && v !== undefined && detailValue(v) !== '')
    .map(([k, v]) => ({ type: k, valueString: detailValue(v) }));
  if (details.length > 0) out[0]!.detail = details;
  if (present(r.patientId) && !(isPatient && r.resource.id === r.patientId)) {
    out.push({
      what: { reference: `Patient/${r.patientId}` },
      type: { system: ENTITY_TYPE, code: '1', display: 'Person' },
      role: { system: OBJECT_ROLE, code: '1', display: 'Patient' },
    });
  }
  if (present(r.requestId)) {
    out.push({ what: { identifier: { value: r.requestId } }, type: { system: BALP_ENTITY_TYPE, code: 'XrequestId', display: 'Request Id' } });
  }
  return out;
}

function agentOf(r: AuditEvent): Json {
  const roles = r.actor.roles.filter(present).map((role) => ({ coding: [{ system: ROLE_SYSTEM, code: role }], text: role }));
  return {
    ...(present(r.client.userAgent) ? { extension: [{ url: USER_AGENT_EXTENSION_URL, valueString: r.client.userAgent }] } : {}),
    ...(roles.length > 0 ? { role: roles } : {}),
    who: { identifier: { value: r.actor.sub } },
    requestor: true,
    ...(present(r.client.ip) ? { network: { address: r.client.ip, type: '2' } } : {}),
  };
}

/** The record as a FHIR R4 AuditEvent; `tenantId` is the source site. */
export function toFhirAuditEvent(r: AuditEvent, tenantId: string): FhirAuditEvent {
  const { type, subtype } = typeOf(r);
  return {
    resourceType: 'AuditEvent',
    id: r.id,
    extension: [
      {
        url: RECORD_SIGNATURE_EXTENSION_URL,
        extension: [
          { url: 'keyId', valueString: r.keyId },
          { url: 'hmac', valueString: r.hmac },
        ],
      },
    ],
    type,
    subtype,
    action: ACTION_CODES[r.action],
    recorded: r.occurredAt,
    ...outcomeOf(r),
    agent: [agentOf(r)],
    source: { site: tenantId, observer: { display: 'Carebase' }, type: [{ system: SOURCE_TYPE, code: '4', display: 'Application Server' }] },
    entity: entitiesOf(r),
  };
}
