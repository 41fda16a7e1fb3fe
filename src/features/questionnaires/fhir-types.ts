// The FHIR R4 shapes the questionnaire features work with: the subset of Questionnaire and
// QuestionnaireResponse that Carebase interprets. Everything else a resource carries is kept as-is
// (the index signatures), so an imported form round-trips unchanged.

export interface Extension {
  url: string;
  valueDecimal?: number;
  valueInteger?: number;
  valueString?: string;
  valueBoolean?: boolean;
  valueCoding?: Coding;
  valueExpression?: { name?: string; language: string; expression: string };
  [k: string]: unknown;
}

export interface Coding {
  system?: string;
  version?: string;
  code?: string;
  display?: string;
  extension?: Extension[];
  [k: string]: unknown;
}

export interface Quantity {
  value?: number;
  unit?: string;
  system?: string;
  code?: string;
  [k: string]: unknown;
}

export type ItemType =
  | 'group' | 'display' | 'boolean' | 'decimal' | 'integer' | 'date' | 'dateTime' | 'time'
  | 'string' | 'text' | 'choice' | 'open-choice' | 'quantity';

export interface AnswerOption {
  valueCoding?: Coding;
  valueString?: string;
  valueInteger?: number;
  valueDate?: string;
  initialSelected?: boolean;
  extension?: Extension[];
  [k: string]: unknown;
}

export type EnableWhenOperator = 'exists' | '=' | '!=' | '>' | '<' | '>=' | '<=';

export interface EnableWhen {
  question: string;
  operator: EnableWhenOperator;
  answerBoolean?: boolean;
  answerDecimal?: number;
  answerInteger?: number;
  answerDate?: string;
  answerDateTime?: string;
  answerTime?: string;
  answerString?: string;
  answerCoding?: Coding;
  answerQuantity?: Quantity;
  [k: string]: unknown;
}

export interface QuestionnaireItem {
  linkId: string;
  text?: string;
  type: ItemType;
  required?: boolean;
  repeats?: boolean;
  readOnly?: boolean;
  maxLength?: number;
  answerOption?: AnswerOption[];
  answerValueSet?: string;
  enableWhen?: EnableWhen[];
  enableBehavior?: 'all' | 'any';
  item?: QuestionnaireItem[];
  extension?: Extension[];
  code?: Coding[];
  [k: string]: unknown;
}

export interface ValueSetConcept {
  code: string;
  display?: string;
  extension?: Extension[];
  [k: string]: unknown;
}

export interface ValueSet {
  resourceType: 'ValueSet';
  id?: string;
  url?: string;
  compose?: { include: { system?: string; concept?: ValueSetConcept[]; [k: string]: unknown }[]; [k: string]: unknown };
  expansion?: { contains?: (ValueSetConcept & { system?: string })[]; [k: string]: unknown };
  [k: string]: unknown;
}

export interface CodeSystem {
  resourceType: 'CodeSystem';
  id?: string;
  url?: string;
  concept?: (ValueSetConcept & { property?: { code: string; valueDecimal?: number; valueInteger?: number }[] })[];
  [k: string]: unknown;
}

export interface Questionnaire {
  resourceType: 'Questionnaire';
  id?: string;
  url?: string;
  version?: string;
  name?: string;
  title?: string;
  status: 'draft' | 'active' | 'retired' | 'unknown';
  code?: Coding[];
  contained?: (ValueSet | CodeSystem | { resourceType: string; [k: string]: unknown })[];
  extension?: Extension[];
  item?: QuestionnaireItem[];
  [k: string]: unknown;
}

export interface ResponseAnswer {
  valueBoolean?: boolean;
  valueDecimal?: number;
  valueInteger?: number;
  valueDate?: string;
  valueDateTime?: string;
  valueTime?: string;
  valueString?: string;
  valueCoding?: Coding;
  valueQuantity?: Quantity;
  /** Items nested under an answer (FHIR allows children of a question's answer). */
  item?: ResponseItem[];
  extension?: Extension[];
  [k: string]: unknown;
}

export interface ResponseItem {
  linkId: string;
  text?: string;
  answer?: ResponseAnswer[];
  item?: ResponseItem[];
  [k: string]: unknown;
}
