// Real clients for the real-time transports: `ws` for WebSocket and the `eventsource` package (a
// WHATWG EventSource for Node: reconnects by itself, sends Last-Event-ID) for SSE, each with an
// inbox tests can wait on.
import { EventSource } from 'eventsource';
import WebSocket from 'ws';

const wsUrl = (base: string) => base.replace(/^http/, 'ws');

export interface Inbox<T> {
  readonly all: T[];
  /** Resolves with the first message (from the start of the inbox) matching, waiting up to timeoutMs. */
  next(match: (m: T) => boolean, timeoutMs?: number): Promise<T>;
}

function inbox<T>(): Inbox<T> & { push(m: T): void } {
  const all: T[] = [];
  const waiters = new Set<() => void>();
  return {
    all,
    push(m) {
      all.push(m);
      for (const w of [...waiters]) w();
    },
    next(match, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = all.find(match);
          if (hit === undefined) return false;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(hit);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(all).slice(-1500)}`));
        }, timeoutMs);
        if (!check()) waiters.add(check);
      });
    },
  };
}

export interface WsClient extends Inbox<any> {
  ws: WebSocket;
  send(m: unknown): void;
  /** Sends a message with an id and resolves with the reply (same id) of type `reply` or `error`. */
  call(m: Record<string, unknown>, timeoutMs?: number): Promise<any>;
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

let seq = 0;

/** Opens a WebSocket with a bearer token or a ticket; rejects with {status, body} when refused. */
export function openWs(base: string, auth: { token?: string; ticket?: string }): Promise<WsClient> {
  const url = `${wsUrl(base)}/v1/ws${auth.ticket ? `?ticket=${encodeURIComponent(auth.ticket)}` : ''}`;
  const ws = new WebSocket(url, { headers: auth.token ? { authorization: `Bearer ${auth.token}` } : {} });
  const box = inbox<any>();
  ws.on('message', (data) => box.push(JSON.parse(String(data))));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
  return new Promise((resolve, reject) => {
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => req.destroy());
      res.on('end', () => reject(Object.assign(new Error(`refused ${res.statusCode}`), { status: res.statusCode, body: JSON.parse(body || 'null'), headers: res.headers })));
    });
    ws.on('error', (err) => reject(err));
    ws.on('open', () =>
      resolve({
        ...box,
        ws,
        closed,
        send: (m) => ws.send(typeof m === 'string' ? m : JSON.stringify(m)),
        call(m, timeoutMs) {
          const id = (m.id as string | undefined) ?? `m${++seq}`;
          ws.send(JSON.stringify({ ...m, id }));
          return box.next((r) => r.id === id && r.type !== 'request', timeoutMs);
        },
        close: () => ws.close(),
      }),
    );
  });
}

export interface SseMessage {
  event: string;
  id: string;
  data: any;
}

export interface SseClient extends Inbox<SseMessage> {
  es: EventSource;
  /** Resource events only (those with an id), in arrival order. */
  events(): SseMessage[];
  errors: { code?: number; message?: string }[];
  close(): void;
}

/** Event names the tests listen for (EventSource has no catch-all for named events). */
export const SSE_EVENT_NAMES = [
  'patient.created', 'patient.updated', 'patient.deleted',
  'questionnaire-response.created', 'questionnaire-response.updated', 'questionnaire-response.deleted',
  'ready', 'resync-required', 'member-joined', 'member-left', 'typing', 'closing', 'stream-error', 'message',
];

export function openSse(base: string, topics: string[], auth: { token?: string; ticket?: string }, headers: Record<string, string> = {}): SseClient {
  const qs = topics.map((t) => `topic=${encodeURIComponent(t)}`).join('&') + (auth.ticket ? `&ticket=${encodeURIComponent(auth.ticket)}` : '');
  const es = new EventSource(`${base}/v1/events?${qs}`, {
    fetch: (input, init) => {
      // The EventSource's own headers (Last-Event-ID on reconnect) win over the initial ones.
      const h = new Headers(headers);
      for (const [k, v] of new Headers(init?.headers)) h.set(k, v);
      if (auth.token) h.set('authorization', `Bearer ${auth.token}`);
      return fetch(input, { ...init, headers: h });
    },
  });
  const box = inbox<SseMessage>();
  const errors: { code?: number; message?: string }[] = [];
  for (const name of SSE_EVENT_NAMES) {
    es.addEventListener(name, (e) => {
      const m = e as MessageEvent;
      box.push({ event: name, id: m.lastEventId, data: JSON.parse(String(m.data)) });
    });
  }
  es.onerror = (e) => errors.push({ code: (e as unknown as { code?: number }).code, message: (e as unknown as { message?: string }).message });
  return { ...box, es, errors, events: () => box.all.filter((m) => m.event.includes('.')), close: () => es.close() };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until check() is true (or throws after timeoutMs). */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
