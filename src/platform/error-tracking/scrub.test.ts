// The allow-list of error reports (scrub.ts), on events as Sentry builds them and on events
// stuffed with everything it must drop.
import { defaultStackParser } from '@sentry/node-core/light';
import type { ErrorEvent, EventHint } from '@sentry/node-core/light';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../errors.js';
import { frameLines } from '../log.js';
import { scrubEvent, WITHHELD, type StackParser } from './scrub.js';

const parse = defaultStackParser as StackParser;
const PHI = 'Yvone889 Cummings51';

/** An event as Sentry hands it to beforeSend, plus every field a careless integration or scope could add. */
function stuffed(err: unknown, tags: Record<string, unknown> = {}): { event: ErrorEvent; hint: EventHint } {
  const event = {
    type: undefined,
    event_id: 'a'.repeat(32),
    timestamp: 1_800_000_000,
    level: 'error',
    platform: 'node',
    server_name: 'api-1',
    release: 'carebase@1.2.3',
    environment: 'production',
    message: `message ${PHI}`,
    logentry: { message: PHI },
    exception: { values: [{ type: 'Error', value: `raw ${PHI}`, mechanism: { type: 'carebase.http', handled: true, data: { phi: PHI } } }] },
    tags: { route: '/v1/patients/:id', method: 'GET', request_id: 'req-1', tenant: 'demo', roles: 'clinician,staff', status_code: '500', error_code: 'INTERNAL', patient: PHI, url: `/v1/patients?name=${PHI}`, ...tags },
    user: { id: 'patient-sub', email: 'a@b.c', ip_address: '10.0.0.1' },
    request: { url: `http://x/v1/patients?name=${PHI}`, query_string: `name=${PHI}`, headers: { authorization: 'Bearer secret-token', cookie: 'sid=1' }, data: { name: PHI } },
    extra: { body: PHI },
    breadcrumbs: [{ message: `GET /v1/patients?name=${PHI}` }],
    contexts: { runtime: { name: 'node', version: 'v20.20.2' }, trace: { trace_id: 'b'.repeat(32), span_id: 'c'.repeat(16), data: { 'url.full': PHI } }, app: { free_memory: 1 }, state: { phi: PHI } },
    fingerprint: [PHI],
    modules: { pg: '8' },
    sdkProcessingMetadata: { normalizedRequest: { url: PHI } },
  } as unknown as ErrorEvent;
  return { event, hint: { originalException: err, event_id: 'a'.repeat(32) } };
}

describe('scrubEvent', () => {
  it('keeps only the allowed fields: ids, versions, checked tags, runtime and trace ids, exceptions', () => {
    const { event, hint } = stuffed(new Error(`insert failed for ${PHI}`));
    const out = scrubEvent(event, hint, parse)!;
    expect(Object.keys(out).sort()).toEqual(['contexts', 'environment', 'event_id', 'exception', 'level', 'platform', 'release', 'server_name', 'tags', 'timestamp', 'transaction', 'type']);
    expect(out.tags).toEqual({ route: '/v1/patients/:id', method: 'GET', request_id: 'req-1', tenant: 'demo', roles: 'clinician,staff', status_code: '500', error_code: 'INTERNAL' });
    expect(out.transaction).toBe('GET /v1/patients/:id');
    expect(out.contexts).toEqual({ runtime: { name: 'node', version: 'v20.20.2' }, trace: { trace_id: 'b'.repeat(32), span_id: 'c'.repeat(16) } });
    expect(out.exception!.values![0]).toMatchObject({ type: 'Error', value: WITHHELD, mechanism: { type: 'carebase.http', handled: true } });
    expect(JSON.stringify(out)).not.toContain(PHI);
    expect(JSON.stringify(out)).not.toMatch(/secret-token|sid=1|10\.0\.0\.1|patient-sub/);
  });

  it('drops tags whose values do not have their shape (a URL as route, unknown roles, a made-up error code)', () => {
    const { event, hint } = stuffed(new Error('x'), { route: `/v1/patients?name=${PHI}`, roles: `clinician,${PHI}`, error_code: PHI, tenant: PHI, request_id: `${PHI}!`, ['__proto__']: 'x' });
    const out = scrubEvent(event, hint, parse)!;
    expect(out.tags).toEqual({ method: 'GET', status_code: '500' });
    expect(out.transaction).toBeUndefined();
  });

  it('keeps our own AppError messages, withholds every other one, and adds the error code', () => {
    const app = scrubEvent(stuffed(new AppError('INTERNAL', 'The audit key is missing')).event, stuffed(new AppError('INTERNAL', 'The audit key is missing')).hint, parse)!;
    expect(app.exception!.values![0]!.value).toBe('The audit key is missing');
    const sys = Object.assign(new Error(`connect ECONNREFUSED for ${PHI}`), { code: 'ECONNREFUSED' });
    const out = scrubEvent(stuffed(sys).event, stuffed(sys).hint, parse)!;
    expect(out.exception!.values![0]!.value).toBe(`${WITHHELD} (code ECONNREFUSED)`);
    expect(out.tags!['error.cause_code']).toBe('ECONNREFUSED');
  });

  it('reports the cause chain (innermost first) with types, codes and schema names, never messages', () => {
    const pg = Object.assign(new Error(`duplicate key value (email)=(${PHI})`), { code: '23505', table: 'patients', constraint: 'patients_email_key', detail: PHI });
    class DrizzleQueryError extends Error {}
    const err = new DrizzleQueryError(`Failed query: insert into patients params: ${PHI}`, { cause: pg });
    const { event, hint } = stuffed(err);
    const out = scrubEvent(event, hint, parse)!;
    const values = out.exception!.values!;
    expect(values.map((v) => v.type)).toEqual(['Error', 'DrizzleQueryError']);
    expect(values[0]).toMatchObject({ value: `${WITHHELD} (code 23505)`, mechanism: { type: 'chained', source: 'cause', exception_id: 1, parent_id: 0 } });
    expect(values[1]!.mechanism).toMatchObject({ type: 'carebase.http', exception_id: 0 });
    expect(out.tags).toMatchObject({ 'db.sqlstate': '23505', 'db.table': 'patients', 'db.constraint': 'patients_email_key' });
    expect(JSON.stringify(out)).not.toContain(PHI);
  });

  it('never takes message lines for stack frames', () => {
    const err = new Error(`lookup failed\n    at ${PHI} (/patients/${PHI}.ts:1:1)\n    at Object.smith (/home/smith-john/1961-07-04.ts:2:2)`);
    expect(frameLines(err)).not.toContain(PHI);
    expect(frameLines(err)).not.toContain('smith');
    const out = scrubEvent(stuffed(err).event, stuffed(err).hint, parse)!;
    const frames = out.exception!.values![0]!.stacktrace!.frames!;
    expect(frames.length).toBeGreaterThan(0);
    expect(frames.some((f) => f.filename?.endsWith('scrub.test.ts'))).toBe(true);
    expect(JSON.stringify(frames)).not.toMatch(/Cummings|smith|1961/);
    // A message changed after the stack was formatted: only the trailing run of frame lines counts.
    const changed = new Error(`lookup failed\n    at ${PHI} (/patients/x.ts:1:1)\nfor this patient`);
    void changed.stack;
    changed.message = 'lookup failed';
    expect(frameLines(changed)).not.toContain(PHI);
    expect(frameLines(changed)).toMatch(/scrub\.test\.ts/);
    // Frames keep file, function, line and column only (no vars, no source lines).
    for (const f of frames) expect(Object.keys(f).every((k) => ['filename', 'abs_path', 'module', 'function', 'lineno', 'colno', 'in_app'].includes(k))).toBe(true);
  });

  it('describes thrown non-errors by their type only', () => {
    const out = scrubEvent(stuffed({ name: PHI, birthDate: '1961-07-04' }).event, stuffed({ name: PHI }).hint, parse)!;
    expect(out.exception!.values).toEqual([{ type: 'NonError', value: 'a value of type object was thrown (withheld)', mechanism: { type: 'carebase.http', handled: true } }]);
    expect(JSON.stringify(out)).not.toContain(PHI);
  });

  it('sends nothing for transactions, events without an original exception, or when scrubbing fails', () => {
    const { event, hint } = stuffed(new Error('x'));
    expect(scrubEvent({ ...event, type: 'transaction' } as unknown as ErrorEvent, hint, parse)).toBeNull();
    expect(scrubEvent(event, { event_id: 'x' }, parse)).toBeNull();
    const throwing = (() => {
      throw new Error(PHI);
    }) as StackParser;
    expect(scrubEvent(event, hint, throwing)).toBeNull();
  });
});
