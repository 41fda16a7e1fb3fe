// Case- and accent-insensitive name matching, computed in the application so it behaves the
// same on PGlite and PostgreSQL without extensions: "José O'Brien" is stored as the tokens
// jose, o, brien, obrien and found by "jo", "JOSÉ", "obri" or "o'bri".

export function fold(s: string): string {
  return s.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase();
}

const SPLIT = /[^\p{L}\p{N}]+/u;

export function nameTokens(name: { given: string[]; family: string }): string[] {
  const tokens = new Set<string>();
  for (const part of [...name.given, name.family]) {
    const f = fold(part);
    for (const t of f.split(SPLIT)) if (t) tokens.add(t);
    const joined = f.replace(new RegExp(SPLIT.source, 'gu'), '');
    if (joined) tokens.add(joined);
  }
  return [...tokens];
}

/** The words of a search string, each to be matched as a token prefix. */
export function searchPrefixes(query: string): string[] {
  return fold(query)
    .split(/\s+/u)
    .map((w) => w.replace(new RegExp(SPLIT.source, 'gu'), ''))
    .filter(Boolean);
}

/** Escapes LIKE metacharacters so a prefix matches literally. */
export const likePrefix = (p: string) => `${p.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
