// Reading the JSON log lines a test server captured. The per-request line is written in the
// onResponse hook, which can run after the client already has the response: wait for it.

export type LogLine = Record<string, unknown> & { msg?: string; reqId?: string; level?: string };

export const parseLogs = (logs: string[]): LogLine[] => logs.map((l) => JSON.parse(l) as LogLine);

export const requestLines = (logs: string[]): LogLine[] => parseLogs(logs).filter((l) => l.msg === 'request');

/** Polls until fn returns a truthy value; throws after timeoutMs. */
export async function waitFor<T>(fn: () => T | undefined | null | false, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The one "request" log line of the request with this id, once written. */
export const requestLineOf = (logs: string[], reqId: string) =>
  waitFor(() => requestLines(logs).find((l) => l.reqId === reqId), 5000, `request log line of ${reqId}`);
