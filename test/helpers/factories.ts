import { withNpiCheckDigit } from '../../src/features/providers/npi.js';

let n = 0;

export const patientInput = (over: Record<string, unknown> = {}) => ({
  name: { given: ['Ana', 'Lucía'], family: 'Núñez' },
  birthDate: '1984-03-09',
  gender: 'female',
  identifiers: [{ system: 'urn:test:mrn', value: `MRN-${++n}` }],
  email: 'ana.nunez@example.org',
  phone: '+1 555 010 2030',
  address: { line: ['1 Test St'], city: 'Springfield', state: 'IL', postalCode: '62701', country: 'US' },
  ...over,
});

export const locationInput = (over: Record<string, unknown> = {}) => ({
  name: 'Test Clinic',
  timeZone: 'America/Chicago',
  address: { line: ['5 Clinic Way'], city: 'Chicago', state: 'IL', postalCode: '60601', country: 'US' },
  ...over,
});

/** A provider with a valid, unique NPI. */
export const providerInput = (over: Record<string, unknown> = {}) => ({
  name: { given: ['Grace'], family: 'Hopper' },
  npi: withNpiCheckDigit(String(100_000_000 + Math.floor(Math.random() * 800_000_000))),
  specialty: 'Cardiology',
  locationIds: [],
  ...over,
});
