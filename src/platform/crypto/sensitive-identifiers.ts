// Which patient identifiers are encrypted: those whose system is a government or insurance
// identifier (ENCRYPTED_IDENTIFIER_SYSTEMS). Systems are compared exactly, as FHIR compares them.
// An identifier without a system is never treated as sensitive: nothing says what it is.

/**
 * The default list: the US Social Security number (under its FHIR URI and its OID, as data
 * converted from C-CDA carries it), the legacy Medicare number (HICN) and the Medicare Beneficiary
 * Identifier that replaced it. Setting ENCRYPTED_IDENTIFIER_SYSTEMS replaces this list.
 */
export const DEFAULT_ENCRYPTED_IDENTIFIER_SYSTEMS: readonly string[] = Object.freeze([
  'http://hl7.org/fhir/sid/us-ssn',
  'urn:oid:2.16.840.1.113883.4.1',
  'http://hl7.org/fhir/sid/us-medicare',
  'http://hl7.org/fhir/sid/us-mbi',
]);

export function isSensitiveIdentifierSystem(system: string | undefined, sensitiveSystems: readonly string[]): boolean {
  return system !== undefined && sensitiveSystems.includes(system);
}
