// The whole-suite guard against PHI in logs: every server a test starts (test/helpers/server.ts)
// checks, when it closes, that none of the patient values the factories and suites send appears
// in any line it logged. test/logs-phi.test.ts drives a deliberate request mix; this covers every
// other test too, whatever it does.
import { patientInput } from './factories.js';

const factory = patientInput();
/** Values of test patients (factories and suites), compared case-insensitively. */
const PHI_VALUES = [
  factory.name.family, factory.name.given[1]!, factory.email, factory.phone, factory.birthDate, factory.address.line[0]!,
  // patient-erasure tests
  'Forgotten Lane', 'erase.example.org', 'Whisker',
].map((v) => v.toLowerCase());
// SSNs (patients.encryption.test.ts makes random ones): never in a log, in any test.
const SSN_LIKE = /\b\d{3}-\d{2}-\d{4}\b/;

/** The PHI values found in log lines (empty when there are none). */
export function phiInLogs(lines: readonly string[]): string[] {
  const found = new Set<string>();
  for (const line of lines) {
    const lower = line.toLowerCase();
    for (const v of PHI_VALUES) if (lower.includes(v)) found.add(v);
    const ssn = SSN_LIKE.exec(line);
    if (ssn) found.add(`an SSN-like value`);
  }
  return [...found];
}
