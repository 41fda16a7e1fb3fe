// Reading PostgreSQL errors through drizzle's wrapper. DrizzleQueryError's message holds the
// query parameters (PHI), so code elsewhere must never print it; it only asks for the SQLSTATE.

export interface PgErrorFields {
  code: string;
  constraint?: string;
  table?: string;
  column?: string;
}

/** The PostgreSQL error behind err (following `cause`), or undefined for non-database errors. */
export function pgError(err: unknown): PgErrorFields | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) {
      const { constraint, table, column } = e as Record<string, string | undefined>;
      return { code, constraint, table, column };
    }
  }
  return undefined;
}

export const isUniqueViolation = (err: unknown, constraint?: string) => {
  const pg = pgError(err);
  return pg?.code === '23505' && (constraint === undefined || pg.constraint === constraint);
};

const UNREACHABLE = /ECONNREFUSED|ECONNRESET|EPIPE|timeout exceeded when trying to connect|Connection terminated|database is closed|Cannot use a pool after calling end|Client has encountered a connection error/i;

/**
 * The database cannot be reached or is going away: SQLSTATE class 08 (connection), 57P0x
 * (shutdown), 53 (insufficient resources), or a driver-level connection failure.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const code = pgError(err)?.code;
  if (code) return /^(08|57P0|53)/.test(code);
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (UNREACHABLE.test(e.message)) return true;
  }
  return false;
}
