// The FHIR R4 Questionnaire as this API takes and returns it. The schemas document the shape in
// OpenAPI and check it (types, enums, required members) in the service, in the same pass as the
// definition rules (definition-rules.ts), so one 400 lists every problem. Every object admits
// further members: FHIR resources carry many elements and extensions that Carebase keeps as sent.
import { Type, type Static, type TSchema } from 'typebox';
import type { Questionnaire as FhirQuestionnaire } from './fhir-types.js';
import { ListQuery, ResourceMeta } from '../shared/schemas.js';

export const ITEM_TYPES = ['group', 'display', 'boolean', 'decimal', 'integer', 'date', 'dateTime', 'time', 'string', 'text', 'choice', 'open-choice', 'quantity'] as const;
export const ENABLE_WHEN_OPERATORS = ['exists', '=', '!=', '>', '<', '>=', '<='] as const;
export const STATUSES = ['draft', 'active', 'retired'] as const;
export type QuestionnaireStatus = (typeof STATUSES)[number];

// FHIR R4 primitive formats (https://hl7.org/fhir/R4/datatypes.html), partial dates included.
const YEAR = '([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)';
const MONTH_DAY = '(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?';
const TIME = '([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]+)?';
export const FHIR_DATE = `^${YEAR}${MONTH_DAY}$`;
export const FHIR_DATE_TIME = `^${YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T${TIME}(Z|(\\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$`;
export const FHIR_TIME = `^${TIME}$`;

const open = { additionalProperties: true } as const;
const Str = (description?: string) => Type.String({ minLength: 1, ...(description ? { description } : {}) });

export const Extension = Type.Object({ url: Str('What the extension means, e.g. http://hl7.org/fhir/StructureDefinition/ordinalValue') }, open);
const Extensions = Type.Optional(Type.Array(Extension));

export const Coding = Type.Object(
  { system: Type.Optional(Str()), version: Type.Optional(Str()), code: Type.Optional(Str()), display: Type.Optional(Str()), extension: Extensions },
  open,
);

const Quantity = Type.Object({ value: Type.Optional(Type.Number()), unit: Type.Optional(Str()), system: Type.Optional(Str()), code: Type.Optional(Str()) }, open);

const AnswerOption = Type.Object(
  {
    valueCoding: Type.Optional(Type.Object({ ...Coding.properties, code: Str('The code a response answers with') }, open)),
    valueString: Type.Optional(Str()),
    valueInteger: Type.Optional(Type.Integer()),
    valueDate: Type.Optional(Type.String({ pattern: FHIR_DATE })),
    initialSelected: Type.Optional(Type.Boolean()),
    extension: Type.Optional(Type.Array(Extension, { description: 'ordinalValue / itemWeight (valueDecimal) give the option its score' })),
  },
  { ...open, description: 'Exactly one of valueCoding, valueString, valueInteger, valueDate' },
);

const EnableWhen = Type.Object(
  {
    question: Str('linkId of the item whose answer decides'),
    operator: Type.Enum(ENABLE_WHEN_OPERATORS),
    answerBoolean: Type.Optional(Type.Boolean()),
    answerDecimal: Type.Optional(Type.Number()),
    answerInteger: Type.Optional(Type.Integer()),
    answerDate: Type.Optional(Type.String({ pattern: FHIR_DATE })),
    answerDateTime: Type.Optional(Type.String({ pattern: FHIR_DATE_TIME })),
    answerTime: Type.Optional(Type.String({ pattern: FHIR_TIME })),
    answerString: Type.Optional(Str()),
    answerCoding: Type.Optional(Coding),
    answerQuantity: Type.Optional(Quantity),
  },
  { ...open, description: 'Exactly one answer[x], of the type of the item it refers to (answerBoolean for exists)' },
);

/** One item of the tree; `item` nests the same shape (a cyclic schema, a component in OpenAPI). */
export const QuestionnaireItem = Type.Cyclic(
  {
    QuestionnaireItem: Type.Object(
      {
        linkId: Type.String({ minLength: 1, maxLength: 255, description: 'Unique within the whole questionnaire' }),
        text: Type.Optional(Str()),
        type: Type.Enum(ITEM_TYPES),
        required: Type.Optional(Type.Boolean()),
        repeats: Type.Optional(Type.Boolean()),
        readOnly: Type.Optional(Type.Boolean()),
        maxLength: Type.Optional(Type.Integer({ minimum: 1, description: 'string, text and open-choice items only' })),
        answerOption: Type.Optional(Type.Array(AnswerOption, { minItems: 1 })),
        answerValueSet: Type.Optional(Str('`#id` of a contained ValueSet')),
        enableWhen: Type.Optional(Type.Array(EnableWhen, { minItems: 1 })),
        enableBehavior: Type.Optional(Type.Enum(['all', 'any'], { description: 'Required with more than one enableWhen' })),
        item: Type.Optional(Type.Array(Type.Ref('QuestionnaireItem'))),
        code: Type.Optional(Type.Array(Coding)),
        extension: Extensions,
      },
      open,
    ),
  },
  'QuestionnaireItem',
);

const Contained = Type.Object(
  { resourceType: Str('ValueSet or CodeSystem for answers and scores'), id: Type.String({ pattern: '^[A-Za-z0-9\\-.]{1,64}$' }) },
  open,
);

const fhirElements = {
  url: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, pattern: '^\\S+$', description: 'Canonical URL (filter: exact)' })),
  name: Type.Optional(Str()),
  title: Type.Optional(Str()),
  status: Type.Enum(STATUSES, { description: 'draft → active → retired (or draft → retired); changed with PATCH {"status": ...}' }),
  code: Type.Optional(Type.Array(Coding)),
  contained: Type.Optional(Type.Array(Contained)),
  extension: Extensions,
  item: Type.Optional(Type.Array(QuestionnaireItem)),
};

/** A FHIR Questionnaire as clients send it (POST body, or an entry of an imported Bundle). */
export const QuestionnaireResource = Type.Object(
  {
    resourceType: Type.Literal('Questionnaire'),
    id: Type.Optional(Type.String({ description: 'Ignored: the server assigns the id' })),
    version: Type.Optional(Str('FHIR business version; returned as businessVersion')),
    ...fhirElements,
  },
  open,
);

export const QuestionnaireBundle = Type.Object(
  {
    resourceType: Type.Literal('Bundle'),
    entry: Type.Array(
      Type.Object({ fullUrl: Type.Optional(Str()), resource: Type.Object({ resourceType: Str() }, open) }, open),
      { minItems: 1 },
    ),
  },
  open,
);

/** The POST body as documented: a Questionnaire, or a Bundle holding one and its ValueSets/CodeSystems. */
export const QuestionnaireImport = Type.Object(
  {
    ...QuestionnaireResource.properties,
    resourceType: Type.Enum(['Questionnaire', 'Bundle']),
    status: Type.Optional(fhirElements.status),
    entry: Type.Optional(QuestionnaireBundle.properties.entry),
  },
  {
    ...open,
    description:
      'A FHIR R4 Questionnaire, or a Bundle with exactly one Questionnaire and the ValueSets/CodeSystems it references ' +
      '(those are folded into `contained` and answerValueSet rewritten to `#id`)',
  },
);

/** What the API returns: the FHIR resource with our id, version and timestamps. */
export const Questionnaire = Type.Object(
  {
    resourceType: Type.Literal('Questionnaire'),
    ...ResourceMeta,
    businessVersion: Type.Optional(Str('The FHIR Questionnaire.version (`version` here is the resource version)')),
    ...fhirElements,
  },
  open,
);

const nullable = (s: TSchema) => Type.Optional(Type.Union([s, Type.Null()]));

/** PATCH: a JSON merge patch of the returned resource. Only drafts change beyond `status`. */
export const QuestionnairePatch = Type.Object(
  {
    status: Type.Optional(fhirElements.status),
    businessVersion: nullable(Str()),
    url: nullable(fhirElements.url),
    name: nullable(Str()),
    title: nullable(Str()),
    code: nullable(Type.Array(Coding)),
    contained: nullable(Type.Array(Contained)),
    extension: nullable(Type.Array(Extension)),
    item: nullable(Type.Array(QuestionnaireItem)),
  },
  { ...open, minProperties: 1, description: 'Any FHIR element may be patched on a draft; null removes it' },
);

export const QuestionnaireCreateQuery = Type.Object(
  {
    allowExternalValueSets: Type.Optional(
      Type.Boolean({ default: false, description: 'Accept answerValueSet canonical URLs that are not contained (their answers cannot be checked)' }),
    ),
  },
  { additionalProperties: false },
);
export type QuestionnaireCreateQuery = Static<typeof QuestionnaireCreateQuery>;

export const QuestionnaireListQuery = Type.Object(
  {
    ...ListQuery,
    status: Type.Optional(fhirElements.status),
    title: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Case-insensitive substring of the title' })),
    url: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: 'Exact canonical URL' })),
  },
  { additionalProperties: false },
);
export type QuestionnaireListQuery = Static<typeof QuestionnaireListQuery>;

/** The FHIR resource as stored: without its id (ours is the row's); `version` is the business version. */
export type StoredQuestionnaire = FhirQuestionnaire & { status: QuestionnaireStatus };

/** The returned shape (typed by hand: the static type of a cyclic schema is not worth the compile time). */
export interface QuestionnaireView {
  resourceType: 'Questionnaire';
  id: string;
  version: number;
  businessVersion?: string;
  status: QuestionnaireStatus;
  url?: string;
  name?: string;
  title?: string;
  code?: FhirQuestionnaire['code'];
  contained?: FhirQuestionnaire['contained'];
  extension?: FhirQuestionnaire['extension'];
  item?: FhirQuestionnaire['item'];
  createdAt: string;
  updatedAt: string;
  [k: string]: unknown;
}
