// The signature of an audit export stream (NDJSON), so a consumer holding the audit key can tell
// that nothing was removed, added, changed, reordered or cut off.
//
// Scheme `carebase-audit-export/1`: every line is one JSON document followed by "\n". The last
// line is the trailer. Its `signature` is
//
//   base64url( HMAC-SHA256( key, <every byte of every line before the trailer, "\n" included>
//                                ‖ JSON.stringify([scheme, tenantId, format, keyId, count, exportedAt]) ) )
//
// where `count` is the number of lines before the trailer. The key is the audit HMAC key (the one
// that signs each record; its id is `keyId`). A stream without a trailer was cut off. Each record
// line also carries its own `hmac` (see audit-record.ts), checkable with `tenantId` from the
// trailer. The trailer is `{"trailer": {...}}`; with format=fhir it is a FHIR Parameters resource
// whose parameters carry the same fields (count as valueInteger, the others as valueString).
import { createHmac, timingSafeEqual, type Hmac } from 'node:crypto';
import type { AuditKey } from './audit-record.js';

export const EXPORT_SCHEME = 'carebase-audit-export/1';
export type ExportFormat = 'carebase' | 'fhir';

export interface TrailerFields {
  scheme: typeof EXPORT_SCHEME;
  alg: 'HMAC-SHA256';
  tenantId: string;
  format: ExportFormat;
  keyId: string;
  count: number;
  exportedAt: string;
  signature: string;
}

const metaOf = (t: Omit<TrailerFields, 'signature' | 'alg' | 'scheme'>) => JSON.stringify([EXPORT_SCHEME, t.tenantId, t.format, t.keyId, t.count, t.exportedAt]);

function trailerLine(t: TrailerFields): string {
  if (t.format === 'carebase') return `${JSON.stringify({ trailer: t })}\n`;
  const parameter = [
    { name: 'scheme', valueString: t.scheme },
    { name: 'alg', valueString: t.alg },
    { name: 'tenantId', valueString: t.tenantId },
    { name: 'format', valueString: t.format },
    { name: 'keyId', valueString: t.keyId },
    { name: 'count', valueInteger: t.count },
    { name: 'exportedAt', valueString: t.exportedAt },
    { name: 'signature', valueString: t.signature },
  ];
  return `${JSON.stringify({ resourceType: 'Parameters', parameter })}\n`;
}

/** Signs lines as they are written; `trailer()` gives the last line. */
export function createExportSigner(key: AuditKey, tenantId: string, format: ExportFormat) {
  const mac: Hmac = createHmac('sha256', key.secret);
  let count = 0;
  return {
    /** One JSON document as its line ("\n"-terminated), added to the signature. */
    line(doc: unknown): string {
      const text = `${JSON.stringify(doc)}\n`;
      mac.update(text, 'utf8');
      count++;
      return text;
    },
    get count() {
      return count;
    },
    trailer(exportedAt: Date): string {
      const fields = { tenantId, format, keyId: key.id, count, exportedAt: exportedAt.toISOString() };
      const signature = mac.update(metaOf(fields), 'utf8').digest('base64url');
      return trailerLine({ scheme: EXPORT_SCHEME, alg: 'HMAC-SHA256', ...fields, signature });
    },
  };
}

/** The trailer's fields, from either form; undefined when the line is not a trailer. */
export function parseTrailer(line: string): TrailerFields | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!doc || typeof doc !== 'object') return undefined;
  const d = doc as { trailer?: unknown; resourceType?: unknown; parameter?: unknown };
  let t: Record<string, unknown> | undefined;
  if (d.trailer && typeof d.trailer === 'object') t = d.trailer as Record<string, unknown>;
  else if (d.resourceType === 'Parameters' && Array.isArray(d.parameter)) {
    t = Object.fromEntries((d.parameter as { name: string; valueString?: unknown; valueInteger?: unknown }[]).map((p) => [p.name, p.valueString ?? p.valueInteger]));
  }
  if (!t || t.scheme !== EXPORT_SCHEME || t.alg !== 'HMAC-SHA256') return undefined;
  const str = (k: string) => typeof t[k] === 'string';
  if (!str('tenantId') || !str('keyId') || !str('exportedAt') || !str('signature') || !Number.isInteger(t.count)) return undefined;
  if (t.format !== 'carebase' && t.format !== 'fhir') return undefined;
  return t as unknown as TrailerFields;
}

export type ExportCheck = { ok: true; trailer: TrailerFields; lines: string[] } | { ok: false; reason: string };

/**
 * Checks a whole export (the response body as text) with the audit key: a trailer last, the
 * count, the key id, and the signature over every line before it. On success, `lines` are those
 * lines (without "\n").
 */
export function verifyExport(key: AuditKey, body: string): ExportCheck {
  if (!body.endsWith('\n')) return { ok: false, reason: 'the stream does not end with a complete line (cut off)' };
  const cut = body.lastIndexOf('\n', body.length - 2) + 1;
  const signed = body.slice(0, cut);
  const trailer = parseTrailer(body.slice(cut, -1));
  if (!trailer) return { ok: false, reason: 'the last line is not a trailer (cut off)' };
  if (trailer.keyId !== key.id) return { ok: false, reason: `signed with key ${trailer.keyId}, not ${key.id}` };
  const lines = signed === '' ? [] : signed.slice(0, -1).split('\n');
  if (lines.length !== trailer.count) return { ok: false, reason: `the trailer counts ${trailer.count} lines, the stream has ${lines.length}` };
  const expected = Buffer.from(createHmac('sha256', key.secret).update(signed, 'utf8').update(metaOf(trailer), 'utf8').digest('base64url'));
  const actual = Buffer.from(trailer.signature);
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return { ok: false, reason: 'the signature does not match' };
  return { ok: true, trailer, lines };
}
