// The audit HMAC key: AUDIT_HMAC_KEY (required in production), or outside production a random key
// kept in DATA_DIR/audit — never in the database, whose rows it vouches for. Its id (a hash
// prefix, which reveals nothing usable) is stored with each record.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditKey } from './audit-record.js';

export function auditKeyFrom(secret: Buffer): AuditKey {
  return { id: `k${createHash('sha256').update(secret).digest('hex').slice(0, 12)}`, secret };
}

export function loadAuditKey(config: { hmacKey?: Buffer; keyDir: string }): AuditKey {
  if (config.hmacKey) return auditKeyFrom(config.hmacKey);
  const file = join(config.keyDir, 'hmac.key');
  if (!existsSync(file)) {
    mkdirSync(config.keyDir, { recursive: true, mode: 0o700 });
    // Written whole to a private file, then linked into place (atomic, fails if another process
    // was first — then theirs is used), as for the development token issuer's key.
    const tmp = `${file}.${process.pid}.${randomUUID()}`;
    writeFileSync(tmp, randomBytes(32).toString('base64'), { mode: 0o600 });
    try {
      linkSync(tmp, file);
    } catch {
      /* another process created it */
    } finally {
      unlinkSync(tmp);
    }
  }
  return auditKeyFrom(Buffer.from(readFileSync(file, 'utf8').trim(), 'base64'));
}
