// The circuit policy on one instance (in-process store): opening after N failed attempts, failing
// fast with UPSTREAM_UNAVAILABLE, half-opening after the interval, closing on a successful trial,
// timeouts, retries, what does not count, and an operator's forced-open.
import { afterEach, describe, expect, it } from 'vitest';
import { AppError } from '../../errors.js';
import { createLogger } from '../log.js';
import { createMemoryCircuitStore } from './circuit-store.js';
import type { CircuitPolicy } from './circuit.js';
import { createCircuitRegistry, type CircuitRegistry } from './registry.js';
import { UpstreamStatusError, UpstreamUnavailable } from './upstream-errors.js';

const FAST: CircuitPolicy = { failureThreshold: 3, halfOpenAfterMs: 150, timeoutMs: 100, retries: 0, retryDelayMs: 1, retryMaxDelayMs: 5 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A socket failure as fetch reports it (TypeError "fetch failed", the code on its cause). */
const refused = () => Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }) });
const actor = { sub: 'ops-admin', tenant: 't-ops' };

async function rejection(p: Promise<unknown>): Promise<UpstreamUnavailable> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UpstreamUnavailable);
  return err as UpstreamUnavailable;
}

describe('circuit (one instance)', () => {
  const registries: CircuitRegistry[] = [];
  const registry = (policy: Partial<CircuitPolicy> = {}) => {
    const r = createCircuitRegistry({ store: createMemoryCircuitStore(), log: createLogger('silent'), defaults: { ...FAST, ...policy } });
    registries.push(r);
    return r;
  };
  afterEach(async () => {
    await Promise.all(registries.splice(0).map((r) => r.close()));
  });

  it('opens after N consecutive failures, then refuses at once with 503 UPSTREAM_UNAVAILABLE and Retry-After', async () => {
    const r = registry();
    const c = r.define('ehr');
    let calls = 0;
    const failing = () => c.execute(async () => {
      calls++;
      throw refused();
    });
    for (let i = 0; i < 3; i++) {
      const err = await rejection(failing());
      expect(err).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', status: 503, reason: 'failed', circuit: 'ehr' });
      expect(err.message).toBe('ehr is unavailable (TypeError ECONNREFUSED)');
    }
    expect(calls).toBe(3);
    const t0 = performance.now();
    const err = await rejection(failing());
    expect(performance.now() - t0).toBeLessThan(20);
    expect(calls).toBe(3); // the upstream was not called
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', reason: 'open', headers: { 'Retry-After': '1' } });
    const [view] = await r.views();
    expect(view).toMatchObject({ name: 'ehr', state: 'open', mode: 'auto', lastFailure: 'TypeError ECONNREFUSED', failures: { consecutive: 3, total: 3 }, rejections: 1, forcedBy: null });
    expect(Date.parse(view!.openUntil!)).toBeGreaterThan(Date.now());
    expect(r.stats().circuits).toEqual([{ name: 'ehr', failures: 3, rejections: 1 }]);
  });

  it('half-opens after the interval and closes when the trial call succeeds; a failed trial opens it again', async () => {
    const r = registry();
    const c = r.define('calendar');
    let up = false;
    const call = () => c.execute(async () => (up ? 'ok' : Promise.reject(new UpstreamStatusError(503))));
    for (let i = 0; i < 3; i++) await rejection(call());
    expect((await r.views())[0]!.state).toBe('open');
    await sleep(170);
    // Past the open period the next call is a trial: reported as half-open.
    expect((await r.views())[0]).toMatchObject({ state: 'half-open', openUntil: null });
    expect((await rejection(call())).reason).toBe('failed'); // the trial failed …
    expect((await r.views())[0]!.state).toBe('open'); // … so it is open again
    expect((await rejection(call())).reason).toBe('open');
    await sleep(170);
    up = true;
    await expect(call()).resolves.toBe('ok');
    expect((await r.views())[0]).toMatchObject({ state: 'closed', lastFailure: 'answered HTTP 503', failures: { consecutive: 0, total: 4 } });
    await expect(call()).resolves.toBe('ok');
  });

  it('a timeout counts as a failure, and the attempt\'s signal is aborted', async () => {
    const r = registry({ failureThreshold: 2 });
    const c = r.define('slow');
    let aborted = 0;
    const hang = () =>
      c.execute(
        (signal) =>
          new Promise<never>(() => {
            signal.addEventListener('abort', () => aborted++);
          }),
      );
    const t0 = performance.now();
    const err = await rejection(hang());
    expect(performance.now() - t0).toBeGreaterThanOrEqual(90);
    expect(err.message).toBe('slow is unavailable (timed out after 100 ms)');
    expect(aborted).toBe(1);
    await rejection(hang());
    const t1 = performance.now();
    expect((await rejection(hang())).reason).toBe('open');
    expect(performance.now() - t1).toBeLessThan(20); // fails fast instead of waiting out the timeout
    expect((await r.views())[0]).toMatchObject({ state: 'open', lastFailure: 'timed out after 100 ms', failures: { total: 2 } });
  });

  it('retries a transient failure with backoff, then succeeds; each failed attempt counts', async () => {
    const r = registry({ retries: 2, failureThreshold: 5 });
    const c = r.define('flaky');
    let attempts = 0;
    const result = await c.execute(async () => {
      attempts++;
      if (attempts < 3) throw refused();
      return 'third time';
    });
    expect(result).toBe('third time');
    expect(attempts).toBe(3);
    expect((await r.views())[0]).toMatchObject({ state: 'closed', failures: { consecutive: 0, total: 2 } });
  });

  it('retries stop as soon as the circuit opens on the call\'s own failures', async () => {
    const r = registry({ retries: 5, failureThreshold: 2 });
    const c = r.define('dead');
    let attempts = 0;
    const err = await rejection(c.execute(async () => {
      attempts++;
      throw new UpstreamStatusError(502);
    }));
    expect(attempts).toBe(2);
    expect(err).toMatchObject({ reason: 'failed', message: 'dead is unavailable (answered HTTP 502)' });
  });

  it('a 4xx answer is neither retried nor counted, and reaches the caller as it is', async () => {
    const r = registry({ retries: 2, failureThreshold: 1 });
    const c = r.define('strict');
    let attempts = 0;
    const err = await c.execute(async () => {
      attempts++;
      throw new UpstreamStatusError(404);
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamStatusError);
    expect(attempts).toBe(1);
    expect((await r.views())[0]).toMatchObject({ state: 'closed', failures: { total: 0 }, lastFailure: null });
  });

  it('never shows or logs the upstream\'s own message (it may quote request data)', async () => {
    const lines: string[] = [];
    const log = createLogger('info', { write: (l: string) => void lines.push(l) });
    const r = createCircuitRegistry({ store: createMemoryCircuitStore(), log, defaults: { ...FAST, failureThreshold: 1 } });
    registries.push(r);
    const c = r.define('ehr');
    const err = await rejection(c.execute(async () => {
      throw new Error('patient Jane Roe (MRN 12345) not found');
    }));
    expect(err.message).toBe('ehr is unavailable (Error)');
    const text = JSON.stringify(await r.views()) + lines.join('\n');
    expect(text).not.toMatch(/Jane|12345/);
    expect(lines.some((l) => l.includes('circuit opened'))).toBe(true);
  });

  it('forced open by an operator: every call refused until set back to auto', async () => {
    const r = registry();
    const c = r.define('ehr');
    let calls = 0;
    const call = () => c.execute(async () => ++calls);
    expect(await r.setMode('ehr', 'forced-open', actor)).toMatchObject({ state: 'forced-open', mode: 'forced-open', forcedBy: 'ops-admin' });
    const err = await rejection(call());
    expect(err).toMatchObject({ reason: 'forced-open', message: 'ehr is unavailable: its circuit was forced open by an operator' });
    expect(calls).toBe(0);
    expect(await r.setMode('ehr', 'auto', actor)).toMatchObject({ state: 'closed', mode: 'auto', forcedBy: null });
    await expect(call()).resolves.toBe(1);
    expect(r.stats().circuits[0]!.rejections).toBe(1);
  });

  it('refuses names that cannot be labels, keys or URL segments, and duplicates', () => {
    const r = registry();
    r.define('alert-webhook');
    expect(() => r.define('alert-webhook')).toThrow(/already defined/);
    expect(() => r.define('Bad Name')).toThrow(/must match/);
  });

  it('at shutdown a call in flight ends at once and counts against no one', async () => {
    const r = createCircuitRegistry({ store: createMemoryCircuitStore(), log: createLogger('silent'), defaults: { ...FAST, timeoutMs: 10_000, failureThreshold: 1 } });
    const c = r.define('slow');
    const pending = c.execute(() => new Promise<never>(() => {}));
    await sleep(10);
    const t0 = performance.now();
    await r.close();
    expect((await rejection(pending)).reason).toBe('closing');
    expect(performance.now() - t0).toBeLessThan(100);
    expect(r.stats().circuits[0]).toMatchObject({ failures: 0 });
  });
});
