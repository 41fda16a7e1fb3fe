// UUIDv7 ids (RFC 9562): 48 bits of milliseconds, then a 12-bit counter and 62 random bits.
//
// Why not the uuid package's v7: it asks the OS for 16 random bytes per id (webcrypto's
// getRandomValues), which was ~7 µs per audited read — more than the read itself spends on
// anything but I/O. Here random bytes come from a pool refilled 4 KiB at a time.
//
// Ids taken in one millisecond by this process increase (the counter), so keyset pagination by
// id lists records in creation order. idAt() builds an id for a given time (an audit record's
// occurred_at), so a time range maps onto an id range.
import { randomFillSync } from 'node:crypto';

const POOL_SIZE = 4096;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let offset = POOL_SIZE;
let lastMs = -1;
let counter = 0;

function random(n: number): number {
  if (offset + n > POOL_SIZE) {
    randomFillSync(pool);
    offset = 0;
  }
  const at = offset;
  offset += n;
  return at;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function format(ms: number, seq: number, r: number): string {
  const b = pool;
  const time = ms.toString(16).padStart(12, '0');
  const v = (0x7000 | (seq & 0x0fff)).toString(16);
  const variant = HEX[0x80 | (b[r]! & 0x3f)]! + HEX[b[r + 1]!]!;
  const tail = HEX[b[r + 2]!]! + HEX[b[r + 3]!]! + HEX[b[r + 4]!]! + HEX[b[r + 5]!]! + HEX[b[r + 6]!]! + HEX[b[r + 7]!]!;
  return `${time.slice(0, 8)}-${time.slice(8)}-${v}-${variant}-${tail}`;
}

/** A new id, increasing within this process. */
export function newId(): string {
  const now = Date.now();
  if (now > lastMs) {
    lastMs = now;
    counter = pool[random(1)]! & 0x7f; // a random start leaves room to count up within the millisecond
  } else if (++counter > 0x0fff) {
    lastMs++; // 4,096 ids in one millisecond: borrow the next one
    counter = 0;
  }
  return format(lastMs, counter, random(8));
}

/** An id whose timestamp is `at` (to the millisecond); not ordered among ids of the same millisecond. */
export function idAt(at: Date): string {
  const r = random(10);
  return format(at.getTime(), (pool[r + 8]! << 4) | (pool[r + 9]! >> 4), r);
}

/** The smallest id of millisecond `ms`: ids of records at or after `ms` are >= this. */
export function idFloor(ms: number): string {
  const time = Math.max(0, Math.min(ms, 2 ** 48 - 1)).toString(16).padStart(12, '0');
  return `${time.slice(0, 8)}-${time.slice(8)}-7000-8000-000000000000`;
}

/** The millisecond an id was made for (its first 48 bits). */
export const msOfId = (id: string): number => parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
