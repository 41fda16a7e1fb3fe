// The losing side of two processes creating the development key ring at once, made deterministic:
// this process finds no file, and by the time it links its own into place another process's file
// is there. It must then use that file's keys, not its own (or their data would not decrypt here).
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';

let hideOnce: string | undefined;
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const readFileSync = ((path: string, ...rest: unknown[]) => {
    if (path === hideOnce) {
      hideOnce = undefined;
      throw Object.assign(new Error('ENOENT (simulated: the other process has not linked its file yet)'), { code: 'ENOENT' });
    }
    return (fs.readFileSync as (...a: unknown[]) => unknown)(path, ...rest);
  }) as typeof fs.readFileSync;
  return { ...fs, default: { ...fs, readFileSync }, readFileSync };
});

const { DEV_KEY_FILE, loadDevKeyMaterial } = await import('./dev-keys.js');
const { createKeyRing } = await import('./key-ring.js');

const root = mkdtempSync(join(tmpdir(), 'carebase-keys-race-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('development key ring: losing the race to create it', () => {
  it('uses the keys of the process that linked its file first', () => {
    const keyDir = join(root, 'keys');
    mkdirSync(keyDir, { recursive: true });
    const winner = { id: 'dev1', key: Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 73 + 5) & 0xff)) };
    const winnerIndex = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 151 + 9) & 0xff));
    const file = join(keyDir, DEV_KEY_FILE);
    writeFileSync(file, `ENCRYPTION_KEYS=dev1:${winner.key.toString('base64')}\nBLIND_INDEX_KEY=${winnerIndex.toString('base64')}\n`, { mode: 0o600 });
    hideOnce = file;

    const loser = createKeyRing(loadDevKeyMaterial(keyDir));
    expect(hideOnce).toBeUndefined(); // the simulated miss happened
    const winnerRing = createKeyRing({ keys: [winner], blindIndexKey: winnerIndex });
    expect(loser.decrypt(winnerRing.encrypt('123-45-6789', ['a']), ['a'])).toBe('123-45-6789');
    expect(winnerRing.decrypt(loser.encrypt('123-45-6789', ['a']), ['a'])).toBe('123-45-6789');
    expect(loser.blindIndex('t', 's', 'v')).toBe(winnerRing.blindIndex('t', 's', 'v'));
    expect(readdirSync(keyDir)).toEqual([DEV_KEY_FILE]);
  });
});
