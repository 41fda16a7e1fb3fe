// The purposes a patient's consent is asked for. A fixed list: the API refuses any other purpose
// (400), and a service that does something on one of these grounds calls requireConsent first.
// Adding a purpose is a code change (and a line in README), never a migration.

export const PURPOSES = {
  'third-party-sharing': 'Sharing data about the patient with third parties outside the practice (e.g. partner systems via webhooks, external labs, apps)',
  research: 'Use of data about the patient for research, including de-identified studies',
  marketing: 'Marketing messages about services of the practice or its partners',
  'appointment-reminders': 'Appointment reminders by e-mail, SMS or phone',
} as const satisfies Record<string, string>;

export type Purpose = keyof typeof PURPOSES;

/** In the documented order (the order of GET /v1/patients/{id}/consents/current). */
export const PURPOSE_CODES = Object.keys(PURPOSES) as Purpose[];

export const isPurpose = (v: unknown): v is Purpose => typeof v === 'string' && Object.hasOwn(PURPOSES, v);

export const DECISIONS = ['granted', 'revoked'] as const;
export type Decision = (typeof DECISIONS)[number];
