// Unambiguous byte strings from several text parts, for associated data and MAC inputs: each part
// is length-prefixed, so ("a|b", "c") and ("a", "b|c") can never produce the same bytes, and a
// domain label keeps bytes made for one purpose from ever being valid for another.

export function encodeParts(domain: string, parts: readonly string[]): Buffer {
  const chunks: Buffer[] = [];
  for (const part of [domain, ...parts]) {
    const bytes = Buffer.from(part, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    chunks.push(length, bytes);
  }
  return Buffer.concat(chunks);
}
