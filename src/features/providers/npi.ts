/**
 * NPI check digit: Luhn over the 9 leading digits prefixed with 80840 (the NPI's ISO 7812 issuer
 * prefix), as CMS specifies. Catches typos and most made-up numbers at the edge.
 */
export function isValidNpi(npi: string): boolean {
  if (!/^[0-9]{10}$/.test(npi)) return false;
  const digits = `80840${npi.slice(0, 9)}`;
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return (10 - (sum % 10)) % 10 === Number(npi[9]);
}

/** Completes 9 digits into a valid NPI (demo data and tests). */
export function withNpiCheckDigit(nine: string): string {
  for (let d = 0; d <= 9; d++) if (isValidNpi(`${nine}${d}`)) return `${nine}${d}`;
  throw new Error('unreachable: one check digit always fits');
}
