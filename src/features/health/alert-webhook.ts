// The alert webhook client: a Slack-compatible JSON POST ({"text": …}), through the
// 'alert-webhook' circuit when one is given, so a dead webhook costs each later message nothing
// (refused at once) instead of a timeout, and a flapping dependency cannot pile up waiting posts.
import type { Circuit } from '../../platform/circuit/index.js';
import { UpstreamStatusError } from '../../platform/circuit/index.js';
import { outgoingCall } from '../../platform/tracing/tracing.js';

export type AlertPost = (url: string, body: { text: string }) => Promise<void>;

/**
 * One POST; a non-2xx answer is an UpstreamStatusError (5xx/408/429 transient, other 4xx not).
 * Traced (when sampled) as a CLIENT span of its own trace, sent along as traceparent; the span
 * names the webhook's origin only — its path is its credential.
 */
export function postJson(url: string, body: { text: string }, signal: AbortSignal = AbortSignal.timeout(5000)): Promise<void> {
  const { origin, hostname } = new URL(url);
  return outgoingCall(undefined, 'POST', { 'http.request.method': 'POST', 'url.full': origin, 'server.address': hostname }, async (trace) => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...trace }, body: JSON.stringify(body), signal });
    await res.body?.cancel();
    if (!res.ok) throw new UpstreamStatusError(res.status);
  });
}

/** Posts through the circuit: its timeout, retries and open state apply. */
export function circuitPost(circuit: Circuit): AlertPost {
  return (url, body) => circuit.execute((signal) => postJson(url, body, signal));
}
