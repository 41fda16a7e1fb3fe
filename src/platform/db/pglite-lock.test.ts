import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, inject } from 'vitest';
import { createPgliteDb, DataDirInUseError } from './pglite.js';

describe('embedded database directory lock', () => {
  const dirs: string[] = [];
  const copy = () => {
    const root = mkdtempSync(join(tmpdir(), 'carebase-lock-'));
    dirs.push(root);
    const dir = join(root, 'pg');
    cpSync(inject('pgliteTemplate'), dir, { recursive: true });
    return dir;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('refuses a second opener while the first holds the directory, and frees it on close', async () => {
    const dir = copy();
    const first = await createPgliteDb(dir);
    await expect(createPgliteDb(dir)).rejects.toThrow(DataDirInUseError);
    await expect(createPgliteDb(dir)).rejects.toThrow(/in use by process \d+/);
    await first.close();
    const again = await createPgliteDb(dir);
    await again.ping(5000);
    await again.close();
  });

  it('takes over a lock left by a process that no longer exists', async () => {
    const dir = copy();
    writeFileSync(`${dir}.lock`, '999999999');
    const db = await createPgliteDb(dir);
    await db.ping(5000);
    await db.close();
  });
});
