// Test helper: the problems a FHIR R4 validator would report on a Bundle (or any resource) we emit.
// The project ships no FHIR validator (the official one is a Java program); like
// questionnaire-responses/engine/to-fhir.test.ts this checks against the R4 model that fhirpath.js
// ships (every element name, its type and cardinality), and adds what that model lacks:
// * primitive formats (id, instant, dateTime, date, code, uri, string…) per the R4 datatypes page;
// * no empty arrays, strings or objects (ele-1; FHIR JSON has no empty values);
// * required elements (min 1) and required code bindings of the resources we emit;
// * invariants: ext-1, one value[x], qrs-1, cpt-2, ppc-1..5 (Consent), bdl-1..5, bdl-7, bdl-8;
// * references: every Reference.reference resolves to an entry's fullUrl in the Bundle, and the
//   entry's resource is of a type the element allows; fullUrl agrees with the resource's id.
import r4 from 'fhirpath/fhir-context/r4';
import {
  isFhirCode, isFhirDate, isFhirDateTime, isFhirDecimal, isFhirInteger, isFhirString, isFhirTime, isFhirUri,
} from '../../questionnaire-responses/engine/fhir-primitives.js';

const model = r4 as unknown as {
  path2Type: Record<string, string>;
  path2Repeating: Record<string, boolean>;
  pathsDefinedElsewhere: Record<string, string>;
  path2RefType: Record<string, string[]>;
};

const ID = /^[A-Za-z0-9\-.]{1,64}$/;
const INSTANT = /^([0-9]{4})-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$/;
const UUID_URN = /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const PRIMITIVES: Record<string, (v: unknown) => boolean> = {
  'System.String': isFhirString, string: isFhirString, markdown: isFhirString, base64Binary: isFhirString, xhtml: isFhirString,
  code: isFhirCode, uri: isFhirUri, url: isFhirUri, canonical: isFhirUri, oid: isFhirUri, uuid: isFhirUri,
  id: (v) => typeof v === 'string' && ID.test(v),
  instant: (v) => typeof v === 'string' && INSTANT.test(v) && isFhirDateTime(v),
  dateTime: isFhirDateTime, date: isFhirDate, time: isFhirTime, decimal: isFhirDecimal, integer: isFhirInteger,
  positiveInt: (v) => isFhirInteger(v) && v > 0, unsignedInt: (v) => isFhirInteger(v) && v >= 0, boolean: (v) => typeof v === 'boolean',
};

/** Where the model's type is FHIRPath's System.String but R4 defines a FHIR type. */
const TYPE_OVERRIDES: Record<string, string> = { 'Extension.url': 'uri' };

/** Elements with min cardinality 1, per type or element path. */
const REQUIRED: Record<string, string[]> = {
  Bundle: ['type'],
  'Bundle.link': ['relation', 'url'],
  'Bundle.entry.request': ['method', 'url'],
  'Bundle.entry.response': ['status'],
  Extension: ['url'],
  QuestionnaireResponse: ['status'],
  'QuestionnaireResponse.item': ['linkId'],
  Consent: ['status', 'scope', 'category'],
  'Consent.provision.actor': ['role', 'reference'],
  'Consent.provision.data': ['meaning', 'reference'],
  'Consent.verification': ['verified'],
  Narrative: ['status', 'div'],
};

/** Codes of the required bindings on the elements we emit (R4 value sets). */
const REQUIRED_CODES: Record<string, readonly string[]> = {
  'Bundle.type': ['document', 'message', 'transaction', 'transaction-response', 'batch', 'batch-response', 'history', 'searchset', 'collection'],
  'Bundle.entry.search.mode': ['match', 'include', 'outcome'],
  'Bundle.entry.request.method': ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH'],
  'Patient.gender': ['male', 'female', 'other', 'unknown'],
  'Patient.link.type': ['replaced-by', 'replaces', 'refer', 'seealso'],
  'Identifier.use': ['usual', 'official', 'temp', 'secondary', 'old'],
  'HumanName.use': ['usual', 'official', 'temp', 'nickname', 'anonymous', 'old', 'maiden'],
  'ContactPoint.system': ['phone', 'fax', 'email', 'pager', 'url', 'sms', 'other'],
  'ContactPoint.use': ['home', 'work', 'temp', 'old', 'mobile'],
  'Address.use': ['home', 'work', 'temp', 'old', 'billing'],
  'Address.type': ['postal', 'physical', 'both'],
  'QuestionnaireResponse.status': ['in-progress', 'completed', 'amended', 'entered-in-error', 'stopped'],
  'Quantity.comparator': ['<', '<=', '>=', '>'],
  'Consent.status': ['draft', 'proposed', 'active', 'rejected', 'inactive', 'entered-in-error'],
  'Consent.provision.type': ['deny', 'permit'],
  'Consent.provision.data.meaning': ['instance', 'related', 'dependents', 'authoredby'],
  'Narrative.status': ['generated', 'extensions', 'additional', 'empty'],
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

interface Found {
  problems: string[];
  /** Reference.reference values with where they are and the resource types the element allows. */
  references: { at: string; reference: string; types: string[] }[];
}

function resourceProblems(resource: Record<string, unknown>, at: string, found: Found): void {
  const type = resource.resourceType;
  if (typeof type !== 'string' || !model.path2Type[`${type}.meta`]) {
    found.problems.push(`${at}: not a FHIR resource (resourceType ${String(type)})`);
    return;
  }
  if (resource.id !== undefined && !PRIMITIVES.id!(resource.id)) found.problems.push(`${at}.id: invalid id`);
  walk(resource, type, at, found, true);
  invariants(type, resource, at, found.problems);
}

/** Checks every element of `node`, whose definition is at `path` (e.g. Patient, HumanName, Bundle.entry). */
function walk(node: Record<string, unknown>, path: string, at: string, found: Found, resourceRoot = false): void {
  const out = found.problems;
  if (Object.keys(node).length === 0) out.push(`${at}: empty object (ele-1)`);
  for (const r of REQUIRED[path] ?? []) if (node[r] === undefined) out.push(`${at}.${r}: required`);
  const valueKeys = Object.keys(node).filter((k) => /^value[A-Z]/.test(k));
  if (valueKeys.length > 1) out.push(`${at}: several value[x]`);
  for (const [key, value] of Object.entries(node)) {
    if (resourceRoot && (key === 'resourceType' || key === 'id')) continue; // checked by resourceProblems
    const child = `${path}.${key}`;
    const elsewhere = model.pathsDefinedElsewhere[child];
    const type = elsewhere ? 'BackboneElement' : (TYPE_OVERRIDES[child] ?? model.path2Type[child]);
    const where = `${at}.${key}`;
    if (!type) {
      out.push(`${where}: not a FHIR element of ${path}`);
      continue;
    }
    const repeating = model.path2Repeating[elsewhere ?? child] === true;
    if (repeating !== Array.isArray(value)) out.push(`${where}: wrong cardinality (${repeating ? 'array' : 'single value'} expected)`);
    const values = Array.isArray(value) ? value : [value];
    if (values.length === 0) out.push(`${where}: empty array`);
    values.forEach((v, i) => {
      const at2 = Array.isArray(value) ? `${where}[${i}]` : where;
      const check = PRIMITIVES[type];
      if (check) {
        if (!check(v)) out.push(`${at2}: invalid ${type} ${JSON.stringify(v)}`);
        else if (REQUIRED_CODES[child] && !REQUIRED_CODES[child]!.includes(v as string)) out.push(`${at2}: ${JSON.stringify(v)} is not in the required value set`);
      } else if (!isObject(v)) {
        out.push(`${at2}: expected ${type}`);
      } else if (type === 'Resource') {
        resourceProblems(v, at2, found);
      } else {
        const next = type === 'BackboneElement' || type === 'Element' ? (elsewhere ?? child) : type;
        if (type === 'Reference' && typeof v.reference === 'string') found.references.push({ at: `${at2}.reference`, reference: v.reference, types: model.path2RefType[child] ?? ['Resource'] });
        walk(v, next, at2, found);
        invariants(next, v, at2, out);
      }
    });
  }
}

/** Invariants of the types and resources we emit. */
function invariants(path: string, n: Record<string, unknown>, at: string, out: string[]): void {
  const has = (k: string) => n[k] !== undefined;
  const codes = (cc: unknown) => (isObject(cc) && Array.isArray(cc.coding) ? cc.coding.filter(isObject).map((c) => c.code) : []);
  switch (path) {
    case 'Extension':
      if (Object.keys(n).some((k) => /^value[A-Z]/.test(k)) === has('extension')) out.push(`${at}: ext-1 (extension or value[x], not both)`);
      break;
    case 'QuestionnaireResponse.item':
      if (has('item') && has('answer')) out.push(`${at}: qrs-1`);
      break;
    case 'ContactPoint':
      if (has('value') && !has('system')) out.push(`${at}: cpt-2`);
      break;
    case 'Consent': {
      if (!has('policy') && !has('policyRule')) out.push(`${at}: ppc-1 (policy or policyRule)`);
      const scope = codes(n.scope);
      for (const s of ['patient-privacy', 'research', 'adr', 'treatment']) if (scope.includes(s) && !has('patient')) out.push(`${at}: ppc (scope ${s} needs a patient)`);
      break;
    }
    case 'Bundle': {
      const type = n.type;
      const entries = Array.isArray(n.entry) ? n.entry.filter(isObject) : [];
      if (has('total') && type !== 'searchset' && type !== 'history') out.push(`${at}: bdl-1`);
      entries.forEach((e, i) => {
        if (e.search !== undefined && type !== 'searchset') out.push(`${at}.entry[${i}]: bdl-2`);
        const needsRequest = type === 'batch' || type === 'transaction' || type === 'history';
        if ((e.request !== undefined) !== needsRequest) out.push(`${at}.entry[${i}]: bdl-3`);
        if (e.response !== undefined && !['batch-response', 'transaction-response', 'history'].includes(type as string)) out.push(`${at}.entry[${i}]: bdl-4`);
        if (e.resource === undefined && e.request === undefined && e.response === undefined) out.push(`${at}.entry[${i}]: bdl-5`);
        if (typeof e.fullUrl === 'string' && e.fullUrl.includes('/_history/')) out.push(`${at}.entry[${i}].fullUrl: bdl-8`);
      });
      const urls = entries.map((e) => e.fullUrl).filter((u) => u !== undefined);
      if (new Set(urls).size !== urls.length) out.push(`${at}: bdl-7 (fullUrl not unique)`);
      break;
    }
  }
}

/** Bundle-wide: fullUrls agree with ids, every reference resolves to an entry of an allowed type. */
function bundleReferences(bundle: Record<string, unknown>, found: Found): void {
  const byUrl = new Map<string, Record<string, unknown>>();
  const entries = Array.isArray(bundle.entry) ? bundle.entry.filter(isObject) : [];
  entries.forEach((e, i) => {
    const r = isObject(e.resource) ? e.resource : undefined;
    if (typeof e.fullUrl !== 'string' || !r) return;
    byUrl.set(e.fullUrl, r);
    const urn = e.fullUrl.startsWith('urn:uuid:');
    if (urn && !UUID_URN.test(e.fullUrl)) found.problems.push(`Bundle.entry[${i}].fullUrl: not a urn:uuid`);
    if (urn ? e.fullUrl !== `urn:uuid:${String(r.id)}` && r.id !== undefined : !e.fullUrl.endsWith(`/${String(r.resourceType)}/${String(r.id)}`)) {
      found.problems.push(`Bundle.entry[${i}].fullUrl: disagrees with the resource id`);
    }
  });
  for (const ref of found.references) {
    const target = byUrl.get(ref.reference);
    if (!target) found.problems.push(`${ref.at}: ${ref.reference} does not resolve inside the Bundle`);
    else if (!ref.types.includes('Resource') && !ref.types.includes(String(target.resourceType))) {
      found.problems.push(`${ref.at}: refers to a ${String(target.resourceType)}, allowed: ${ref.types.join(', ')}`);
    }
  }
}

/** Every problem found in a FHIR R4 resource (a Bundle: with its entries and their references), as "path: problem". */
export function fhirR4Problems(resource: unknown): string[] {
  const found: Found = { problems: [], references: [] };
  if (!isObject(resource)) return ['not a JSON object'];
  const at = typeof resource.resourceType === 'string' ? resource.resourceType : 'resource';
  resourceProblems(resource, at, found);
  if (resource.resourceType === 'Bundle') bundleReferences(resource, found);
  return found.problems;
}
