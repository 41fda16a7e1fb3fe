// Field encryption of patient identifiers. An identifier whose system is in
// ENCRYPTED_IDENTIFIER_SYSTEMS (SSN, Medicare…) is stored as
//
//   { system, value: "enc:v1:<keyId>:…", valueIndex: "bi1:…" }
//
// so the row, its GIN index, the resource cache and anything else persisted hold the ciphertext
// and a keyed HMAC of the value, never the value. The blind index makes exact-match search an
// equality test; `valueIndex` is also what marks a value as encrypted (the API never accepts one),
// so a plaintext value that merely looks like ciphertext is never taken for one. The associated
// data binds a ciphertext to its tenant and system: copied into another tenant, or under another
// system, it does not decrypt.
import type { FieldKeys } from '../../context.js';
import { isSensitiveIdentifierSystem } from '../../platform/crypto/index.js';
import type { PatientInput, StoredIdentifier } from './patients.schema.js';

export type Identifier = NonNullable<PatientInput['identifiers']>[number];

const identifierAad = (tenantId: string, system: string) => [tenantId, 'patient.identifier', system];

export const isEncrypted = (i: StoredIdentifier): boolean => i.valueIndex !== undefined;

/** The stored form of one identifier: encrypted when its system is listed, else as given. */
export function sealIdentifier(keys: FieldKeys, tenantId: string, { system, value }: Identifier): StoredIdentifier {
  return isSensitiveIdentifierSystem(system, keys.identifierSystems)
    ? { system, value: keys.encrypt(value, identifierAad(tenantId, system)), valueIndex: keys.blindIndex(tenantId, system, value) }
    : { system, value };
}

/** The identifier as the API shows it. Throws DecryptionError (its message never holds the value). */
export function revealIdentifier(keys: FieldKeys, tenantId: string, i: StoredIdentifier): Identifier {
  return { system: i.system, value: isEncrypted(i) ? keys.decrypt(i.value, identifierAad(tenantId, i.system)) : i.value };
}

/** Stored identifiers matching `system|value` (or `value` alone): a patient having any of them matches. */
export function identifierMatches(keys: FieldKeys, tenantId: string, system: string | undefined, value: string): Partial<StoredIdentifier>[] {
  const blind = (s: string) => ({ system: s, valueIndex: keys.blindIndex(tenantId, s, value) });
  // A value alone may be any system's, an encrypted one's too: one blind index per listed system.
  if (!system) return [{ value }, ...keys.identifierSystems.map(blind)];
  // A listed system is searched by its blind index only, so its plaintext never reaches the
  // database, not even as a query parameter. Values stored before their system was listed are
  // encrypted (and so found) by `carebase keys rotate`.
  return isSensitiveIdentifierSystem(system, keys.identifierSystems) ? [blind(system)] : [{ system, value }];
}
