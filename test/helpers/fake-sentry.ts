// A stand-in for Sentry's ingestion endpoint on loopback: it keeps every envelope POSTed to
// /api/<project>/envelope/ (gunzipped when the SDK compressed it) as raw bytes and parsed items.
// DSN: http://<key>@127.0.0.1:<port>/<project>.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export interface EnvelopeItem {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
}

export interface Envelope {
  path: string;
  /** Everything the SDK sent, as received (after gunzip), for "is this value anywhere" checks. */
  raw: string;
  /** Request headers, for the same checks. */
  requestHeaders: Record<string, unknown>;
  header: Record<string, unknown>;
  items: EnvelopeItem[];
}

export interface SentryEvent {
  event_id: string;
  level?: string;
  tags?: Record<string, string>;
  transaction?: string;
  exception?: { values: { type: string; value?: string; mechanism?: Record<string, unknown>; stacktrace?: { frames: Record<string, unknown>[] } }[] };
  [k: string]: unknown;
}

export interface FakeSentry {
  readonly dsn: string;
  readonly envelopes: Envelope[];
  /** The error events received so far. */
  events(): SentryEvent[];
  /** Every byte received so far (bodies and headers), as one string. */
  rawAll(): string;
  waitForEvents(n: number, timeoutMs?: number): Promise<SentryEvent[]>;
  /** Until released, requests are held without an answer (a stalled Sentry). */
  stall(): void;
  close(): Promise<void>;
}

export function parseEnvelope(raw: string): { header: Record<string, unknown>; items: EnvelopeItem[] } {
  const lines = raw.split('\n').filter((l) => l.length > 0);
  const header = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
  const items: EnvelopeItem[] = [];
  for (let i = 1; i + 1 < lines.length; i += 2) items.push({ header: JSON.parse(lines[i]!), payload: JSON.parse(lines[i + 1]!) });
  return { header, items };
}

export async function startFakeSentry(project = '1', key = 'publickey'): Promise<FakeSentry> {
  const envelopes: Envelope[] = [];
  const held: ServerResponse[] = [];
  let stalled = false;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      const raw = body.toString('utf8');
      const path = req.url ?? '';
      if (path.startsWith(`/api/${project}/envelope/`)) envelopes.push({ path, raw, requestHeaders: req.headers, ...parseEnvelope(raw) });
      if (stalled) held.push(res);
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const events = () => envelopes.flatMap((e) => e.items.filter((i) => i.header.type === 'event').map((i) => i.payload as SentryEvent));
  return {
    dsn: `http://${key}@127.0.0.1:${port}/${project}`,
    envelopes,
    events,
    rawAll: () => envelopes.map((e) => `${e.path}\n${JSON.stringify(e.requestHeaders)}\n${e.raw}`).join('\n'),
    async waitForEvents(n, timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs;
      while (events().length < n) {
        if (Date.now() > until) throw new Error(`expected ${n} Sentry events, got ${events().length} within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 25));
      }
      return events();
    },
    stall() {
      stalled = true;
    },
    async close() {
      for (const res of held) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
