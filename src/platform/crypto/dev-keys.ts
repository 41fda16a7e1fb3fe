// Outside production, when ENCRYPTION_KEYS and BLIND_INDEX_KEY are unset, the key ring is generated
// once and kept in DATA_DIR/keys, so encrypted data survives restarts. The file is written in the
// same syntax as the environment variables: to move a development database to explicit keys, copy
// its two lines into the environment (and add new keys in front of the dev key to rotate away).
import { randomBytes, randomUUID } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../../config.js';
import { keyWeakness, parseKeyList, parseSingleKey } from './key-material.js';
import type { KeyRingMaterial } from './key-ring.js';

export const DEV_KEY_FILE = 'field-encryption.env';
const DEV_KEY_ID = 'dev1';

function randomKey(): Buffer {
  // A weak draw is below 1e-13 likely; drawing again keeps the file loadable by its own rules.
  for (;;) {
    const key = randomBytes(32);
    if (!keyWeakness(key)) return key;
  }
}

function parseFile(file: string, text: string): KeyRingMaterial {
  const vars = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) vars.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  const keys = parseKeyList(vars.get('ENCRYPTION_KEYS') ?? '');
  const index = parseSingleKey(vars.get('BLIND_INDEX_KEY') ?? '');
  const problems = [...('problem' in keys ? [`ENCRYPTION_KEYS ${keys.problem}`] : []), ...('problem' in index ? [`BLIND_INDEX_KEY ${index.problem}`] : [])];
  if ('problem' in keys || 'problem' in index) {
    throw new ConfigError([`DATA_DIR: the development key file ${file} is unreadable (${problems.join('; ')}); restore it from a backup, or delete it only if nothing was ever encrypted with it`]);
  }
  return { keys: keys.keys, blindIndexKey: index.key };
}

/** The development key ring of `keyDir`, created on first use. Two processes starting together get the same one. */
export function loadDevKeyMaterial(keyDir: string): KeyRingMaterial {
  const file = join(keyDir, DEV_KEY_FILE);
  try {
    return parseFile(file, readFileSync(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const text = `ENCRYPTION_KEYS=${DEV_KEY_ID}:${randomKey().toString('base64')}\nBLIND_INDEX_KEY=${randomKey().toString('base64')}\n`;
  mkdirSync(keyDir, { recursive: true, mode: 0o700 });
  // Written whole to a private file, then linked into place: link() is atomic and fails when
  // another process got there first, so nobody reads a half-written file and the loser uses the
  // winner's keys (as src/auth/dev-issuer.ts does).
  const tmp = `${file}.${process.pid}.${randomUUID()}`;
  writeFileSync(tmp, text, { mode: 0o600 });
  try {
    linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    unlinkSync(tmp);
  }
  return parseFile(file, readFileSync(file, 'utf8'));
}
