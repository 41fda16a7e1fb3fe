// Synthetic demo data, generated deterministically (same seed → same people) so a demo or a bug
// report can be reproduced. Names include accents and apostrophes on purpose: search must fold them.
import type { LocationInput } from '../locations/locations.schema.js';
import type { PatientInput } from '../patients/patients.schema.js';
import type { ProviderInput } from '../providers/providers.schema.js';
import { withNpiCheckDigit } from '../providers/npi.js';

export const DEMO_TENANT = 'demo';
export const DEMO_MRN_SYSTEM = 'urn:carebase:demo:mrn';

function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const GIVEN_F = ['María', 'Zoë', 'Aisha', 'Chloé', 'Mei', 'Olivia', 'Ngozi', 'Ingrid', 'Priya', 'Hannah', 'Sofía', 'Leilani', 'Ana', 'Emma', 'Fatima'];
const GIVEN_M = ['José', 'Liam', 'Mateo', 'Hiroshi', 'Kwame', 'Lukas', 'Noah', 'Arjun', 'Björn', 'Diego', 'Omar', 'Ethan', 'François', 'Samuel', 'Tomás'];
const FAMILY = ['García', 'Smith', "O'Brien", 'Nguyen', 'Müller', 'Okafor', 'Johansson', 'Patel', 'Kim', 'Rodríguez', 'Dubois', 'Kowalski', 'Haddad', 'Yamamoto', 'Núñez', 'Van der Berg', 'Lefèvre', 'Brown'];
const STREETS = ['Maple Ave', 'Oak St', 'Pine Rd', 'Cedar Ln', 'Elm St', 'Birch Way', 'Willow Ct'];

export const DEMO_LOCATIONS: LocationInput[] = [
  { name: 'Carebase Downtown Clinic', timeZone: 'America/New_York', address: { line: ['100 Main St', 'Suite 200'], city: 'Boston', state: 'MA', postalCode: '02108', country: 'US' } },
  { name: 'Carebase Mountain View', timeZone: 'America/Denver', address: { line: ['45 Aspen Blvd'], city: 'Denver', state: 'CO', postalCode: '80202', country: 'US' } },
  { name: 'Carebase Harbor Health', timeZone: 'America/Los_Angeles', address: { line: ['9 Pier Way'], city: 'Seattle', state: 'WA', postalCode: '98101', country: 'US' } },
];

const SPECIALTIES = ['Family Medicine', 'Internal Medicine', 'Pediatrics', 'Cardiology', 'Dermatology', 'Psychiatry', 'Family Medicine', 'Endocrinology'];

/** Providers for the given location ids (each practices at one or two of them). */
export function demoProviders(locationIds: string[]): ProviderInput[] {
  const rnd = prng(8);
  return SPECIALTIES.map((specialty, i) => {
    const female = i % 2 === 0;
    const given = (female ? GIVEN_F : GIVEN_M)[Math.floor(rnd() * 15)]!;
    const family = FAMILY[Math.floor(rnd() * FAMILY.length)]!;
    const first = locationIds[i % locationIds.length]!;
    const second = locationIds[(i + 1) % locationIds.length]!;
    return {
      name: { given: [given], family },
      npi: withNpiCheckDigit(String(123_456_000 + i * 37)),
      specialty,
      locationIds: i % 3 === 0 ? [first, second] : [first],
    };
  });
}

export function demoPatients(count = 50, seed = 50): PatientInput[] {
  const rnd = prng(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)]!;
  return Array.from({ length: count }, (_, i) => {
    const gender = i % 11 === 10 ? 'other' : rnd() < 0.5 ? 'female' : 'male';
    const given = gender === 'female' ? [pick(GIVEN_F)] : gender === 'male' ? [pick(GIVEN_M)] : [pick(GIVEN_F), pick(GIVEN_M)];
    const family = pick(FAMILY);
    const year = 1940 + Math.floor(rnd() * 80);
    const month = 1 + Math.floor(rnd() * 12);
    const day = 1 + Math.floor(rnd() * 28);
    const loc = DEMO_LOCATIONS[i % DEMO_LOCATIONS.length]!.address!;
    const slug = `${given[0]}.${family}`.normalize('NFKD').replace(/[^A-Za-z.]/g, '').toLowerCase();
    return {
      name: { given, family },
      birthDate: `${year}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`,
      gender,
      identifiers: [{ system: DEMO_MRN_SYSTEM, value: `MRN-${String(100_001 + i)}` }],
      email: `${slug}${i}@example.org`,
      phone: `+1 555 01${String(i).padStart(2, '0')}`,
      address: { line: [`${100 + Math.floor(rnd() * 900)} ${pick(STREETS)}`], city: loc.city!, state: loc.state!, postalCode: loc.postalCode!, country: 'US' },
      active: i % 17 !== 16,
    } satisfies PatientInput;
  });
}
