// A small fetch wrapper: JSON in and out, status and headers exposed for assertions.
export interface Res<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface ReqOptions {
  token?: string;
  body?: unknown;
  /** Raw body (string) sent as is, for malformed-input tests. */
  raw?: string;
  headers?: Record<string, string>;
}

export function client(baseUrl: string, defaultToken?: string) {
  return async function req<T = any>(method: string, path: string, o: ReqOptions = {}): Promise<Res<T>> {
    const headers: Record<string, string> = { ...o.headers };
    const token = o.token ?? defaultToken;
    if (token && !('authorization' in headers)) headers.authorization = `Bearer ${token}`;
    let body: string | undefined;
    if (o.raw !== undefined) body = o.raw;
    else if (o.body !== undefined) {
      body = JSON.stringify(o.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${baseUrl}${path}`, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, headers: res.headers, body: parsed as T, text };
  };
}

export type Client = ReturnType<typeof client>;

/** Asserts the contract's error envelope and returns its error object. */
export function expectError(res: Res, status: number, code: string) {
  if (res.status !== status || res.body?.error?.code !== code) {
    throw new Error(`expected ${status} ${code}, got ${res.status} ${res.text.slice(0, 500)}`);
  }
  const b = res.body;
  if (b.success !== false || typeof b.error.message !== 'string' || typeof b.timestamp !== 'string') throw new Error(`not an error envelope: ${res.text}`);
  if (b.error.requestId !== res.headers.get('x-request-id')) throw new Error('error.requestId differs from X-Request-ID');
  return b.error as { code: string; message: string; details?: { path: string; message: string }[]; requestId: string };
}

/** The If-Match header naming a version, as the API's ETags spell it. */
export const ifMatch = (version: number) => ({ 'if-match': `W/"${version}"` });
