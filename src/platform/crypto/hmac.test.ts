import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { hmacSha256 } from './hmac.js';

const reference = (secret: Buffer, text: string) => createHmac('sha256', secret).update(text).digest('base64url');

// The Big List of Naughty Strings: quotes, control characters, RTL text, emoji, lone surrogates.
const naughty = JSON.parse(readFileSync(new URL('../../../../shared/fixtures/bad-input/blns.json', import.meta.url), 'utf8')) as string[];

describe('hmacSha256', () => {
  it('matches RFC 4231 test case 2 (a key shorter than the block)', () => {
    const mac = hmacSha256(Buffer.from('Jefe'), 'what do ya want for nothing?');
    expect(Buffer.from(mac, 'base64url').toString('hex')).toBe('5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  });

  it('matches RFC 4231 test case 6 (a 131-byte key, hashed first)', () => {
    const mac = hmacSha256(Buffer.alloc(131, 0xaa), 'Test Using Larger Than Block-Size Key - Hash Key First');
    expect(Buffer.from(mac, 'base64url').toString('hex')).toBe('60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54');
  });

  it('equals createHmac for keys of every length around the block size and for naughty texts', () => {
    for (const length of [1, 16, 32, 63, 64, 65, 100]) {
      const secret = randomBytes(length);
      for (const text of ['', 'a', '["t","0190f000-0000-7000-8000-000000000001",null]', ...naughty]) {
        expect(hmacSha256(secret, text)).toBe(reference(secret, text));
      }
    }
  });

  it('equals createHmac for texts longer than its buffer, and stays right afterwards', () => {
    const secret = randomBytes(32);
    const long = 'é'.repeat(20_000);
    expect(hmacSha256(secret, long)).toBe(reference(secret, long));
    expect(hmacSha256(secret, 'short')).toBe(reference(secret, 'short'));
  });

  it('keeps keys apart', () => {
    const a = randomBytes(32);
    const b = randomBytes(32);
    expect(hmacSha256(a, 'x')).toBe(reference(a, 'x'));
    expect(hmacSha256(b, 'x')).toBe(reference(b, 'x'));
    expect(hmacSha256(a, 'x')).not.toBe(hmacSha256(b, 'x'));
  });
});
