// The job queue contract, on both adapters: the in-process runner always, BullMQ when
// TEST_REDIS_URL is set (each test on a key prefix of its own, so test files running in parallel
// never share a queue). Plus BullMQ with Redis unreachable: errors, never hangs or crashes.
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { Type } from 'typebox';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../../test/helpers/process.js';
import { deleteKeys } from '../../../test/helpers/redis.js';
import { createLogger } from '../log.js';
import { installTracing } from '../tracing/tracing.js';
import { createBullmqQueue } from './bullmq-queue.js';
import type { JobCatalog, JobContext, JobQueue, JobQueueOptions, JobRegistry, JobRun } from './job-queue.js';
import { createMemoryQueue } from './memory-queue.js';

const redisUrl = inject('redisUrl');
const N = Type.Object({ n: Type.Integer(), note: Type.Optional(Type.String()) }, { additionalProperties: false });
const CATALOG: JobCatalog = {
  echo: { payload: N },
  flaky: { payload: N, attempts: 3 },
  doomed: { payload: N, attempts: 2 },
  strict: { payload: N },
  slow: { payload: N },
  tick: { payload: Type.Object({}) },
};
/** Looks like PHI: must never reach a log line. */
const MARKER = 'Zyxwv Marker-Person 1970-01-01';

interface Seen {
  name: string;
  id: string;
  attempt: number;
  requestId?: string;
  payload: unknown;
  at: number;
}

/** A queue, its captured log lines, the runs its handlers saw and the outcomes it reported. */
function harness(kind: 'memory' | 'bullmq', prefix: string, over: Partial<JobQueueOptions> = {}) {
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  const runs: JobRun[] = [];
  const opts: JobQueueOptions = {
    catalog: CATALOG,
    log: createLogger('info', sink),
    attempts: 1,
    backoffMs: 50,
    failedRetention: { maxAgeMs: 3_600_000, maxCount: 100 },
    observe: (r) => runs.push(r),
    ...over,
  };
  const queue: JobQueue = kind === 'memory' ? createMemoryQueue(opts) : createBullmqQueue({ ...opts, url: redisUrl!, prefix });
  return { queue, logs, runs, lines: () => logs.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/** Polls fn (sync or async) every 10 ms until it is true; throws after timeoutMs. */
async function waitFor(fn: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const prefixes: string[] = [];
const newPrefix = () => {
  const p = `carebase-test:jobs:${randomBytes(6).toString('hex')}`;
  prefixes.push(p);
  return p;
};

afterAll(() => deleteKeys(...prefixes));

/** Handlers that record each run; `behave` decides what a run does. */
function recorder(behave: (name: string, ctx: JobContext, payload: { n: number }) => Promise<void> = async () => {}) {
  const seen: Seen[] = [];
  const handle = (name: string) => async (payload: { n: number }, ctx: JobContext) => {
    seen.push({ name, id: ctx.id, attempt: ctx.attempt, ...(ctx.requestId ? { requestId: ctx.requestId } : {}), payload, at: Date.now() });
    await behave(name, ctx, payload);
  };
  const registry: JobRegistry = Object.fromEntries(Object.entries(CATALOG).map(([name, t]) => [name, { ...t, handle: handle(name) }]));
  return { seen, registry };
}

const adapters = [
  ['memory', true],
  ['bullmq', Boolean(redisUrl)],
] as const;

for (const [kind, available] of adapters) {
  describe.runIf(available)(`job queue contract: ${kind}`, () => {
    const open = (over: Partial<JobQueueOptions> = {}, prefix = newPrefix()) => harness(kind, prefix, over);

    it('runs an enqueued job once with its payload and request ID, and logs name, id, attempt, duration and outcome (never the payload)', async () => {
      const h = open();
      const r = recorder();
      try {
        h.queue.startWorker(r.registry, { concurrency: 2 });
        const id = await h.queue.enqueue('echo', { n: 7, note: MARKER }, { requestId: 'req-job-1' });
        await waitFor(() => h.runs.length === 1, 5000, 'the run');
        expect(r.seen).toEqual([{ name: 'echo', id, attempt: 1, requestId: 'req-job-1', payload: { n: 7, note: MARKER }, at: expect.any(Number) }]);
        expect(h.runs[0]).toMatchObject({ name: 'echo', outcome: 'completed', durationMs: expect.any(Number), waitMs: expect.any(Number) });
        const line = h.lines().find((l) => l.msg === 'job completed');
        expect(line).toMatchObject({ job: 'echo', jobId: id, attempt: 1, attempts: 1, outcome: 'completed', durationMs: expect.any(Number), reqId: 'req-job-1' });
        expect(h.logs.join('\n')).not.toContain('Zyxwv');
      } finally {
        await h.queue.close();
      }
    });

    it('carries the trace context of the enqueueing code into the job\'s span; a scheduled run has none', async () => {
      const h = open();
      const r = recorder();
      const spans: { name: string; traceparent: unknown }[] = [];
      const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
      // Tracing as tracer.ts installs it, reduced to the job's span (test/tracing.test.ts runs the real one).
      installTracing({
        serverSpan: () => undefined,
        span: (_p, _n, _k, _a, fn) => fn(undefined),
        consumerSpan: (c, name, _a, fn) => {
          spans.push({ name, traceparent: c.traceparent });
          return fn(undefined);
        },
        shutdown: async () => {},
      });
      try {
        h.queue.startWorker(r.registry, { concurrency: 1 });
        await h.queue.enqueue('echo', { n: 1 }, { trace: { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceparent } });
        await h.queue.every('tick', 60_000);
        await waitFor(() => h.runs.length === 2, 5000, 'both runs');
        expect(spans.sort((a, b) => a.name.localeCompare(b.name))).toEqual([
          { name: 'job echo', traceparent },
          { name: 'job tick', traceparent: undefined },
        ]);
      } finally {
        installTracing(undefined);
        await h.queue.close();
      }
    });

    it('refuses an unknown job, a payload its schema refuses and a malformed job id when enqueued', async () => {
      const h = open();
      try {
        await expect(h.queue.enqueue('nope', { n: 1 })).rejects.toThrow(/unknown job "nope"/);
        await expect(h.queue.enqueue('echo', { n: 'one' })).rejects.toMatchObject({ code: 'VALIDATION_FAILED', details: [{ path: '/n', message: expect.any(String) }] });
        await expect(h.queue.enqueue('echo', { n: 1, extra: true })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
        await expect(h.queue.enqueue('echo', { n: 1 }, { jobId: 'has:colon' })).rejects.toThrow(/jobId/);
        expect(await h.queue.counts()).toMatchObject({ waiting: 0, delayed: 0 });
      } finally {
        await h.queue.close();
      }
    });

    it('retries a failing job with exponential backoff until it succeeds', async () => {
      const h = open({ backoffMs: 60 });
      let failures = 0;
      const r = recorder(async (name) => {
        if (name === 'flaky' && failures < 2) {
          failures += 1;
          throw new Error(`transient failure for ${MARKER}`);
        }
      });
      try {
        h.queue.startWorker(r.registry, { concurrency: 1 });
        await h.queue.enqueue('flaky', { n: 1 });
        await waitFor(() => h.runs.some((x) => x.outcome === 'completed'), 5000, 'the successful attempt');
        expect(r.seen.map((s) => s.attempt)).toEqual([1, 2, 3]);
        // 60 ms, then 120 ms (a little slack for timer granularity).
        expect(r.seen[1]!.at - r.seen[0]!.at).toBeGreaterThanOrEqual(50);
        expect(r.seen[2]!.at - r.seen[1]!.at).toBeGreaterThanOrEqual(110);
        expect(h.runs.map((x) => x.outcome)).toEqual(['retrying', 'retrying', 'completed']);
        const retries = h.lines().filter((l) => l.msg === 'job failed; will retry');
        expect(retries.map((l) => [l.attempt, l.retryInMs])).toEqual([
          [1, 60],
          [2, 120],
        ]);
        // The error's type, not its message (a database error can quote values).
        expect(h.logs.join('\n')).not.toContain('Zyxwv');
        expect(await h.queue.counts()).toMatchObject({ failed: 0, waiting: 0, delayed: 0 });
      } finally {
        await h.queue.close();
      }
    });

    it('keeps a job whose attempts are exhausted in the failed set (dead letters)', async () => {
      const h = open({ backoffMs: 20 });
      const r = recorder(async (name) => {
        if (name === 'doomed') throw new Error(`permanent trouble for ${MARKER}`);
      });
      try {
        h.queue.startWorker(r.registry, { concurrency: 1 });
        await h.queue.enqueue('doomed', { n: 1 });
        await waitFor(() => h.runs.some((x) => x.outcome === 'failed'), 5000, 'the last attempt');
        expect(r.seen.map((s) => s.attempt)).toEqual([1, 2]);
        expect(h.runs.map((x) => x.outcome)).toEqual(['retrying', 'failed']);
        await waitFor(async () => (await h.queue.counts()).failed === 1, 2000, 'the failed set');
        expect(h.lines().find((l) => l.msg === 'job failed; no attempts left')).toMatchObject({ job: 'doomed', attempt: 2, attempts: 2, outcome: 'failed', err: { type: 'Error' } });
        expect(h.logs.join('\n')).not.toContain('Zyxwv');
      } finally {
        await h.queue.close();
      }
    });

    it('fails a job whose payload the worker refuses at once, without retry and without running it', async () => {
      // The producer's catalog accepts { n: 1 }; this worker's schema (a newer version, say) does not.
      const h = open({ attempts: 5 });
      const r = recorder();
      const registry = { ...r.registry, strict: { ...r.registry.strict!, payload: Type.Object({ n: Type.Integer({ minimum: 10 }) }) } };
      try {
        h.queue.startWorker(registry, { concurrency: 1 });
        await h.queue.enqueue('strict', { n: 1 });
        await waitFor(() => h.runs.length === 1, 5000, 'the refused run');
        await new Promise((res) => setTimeout(res, 200));
        expect(h.runs.map((x) => x.outcome)).toEqual(['failed']);
        expect(r.seen).toEqual([]);
        expect(h.lines().find((l) => l.outcome === 'failed')?.msg).toMatch(/^job failed without retry: payload refused: \/n must be >= 10/);
        await waitFor(async () => (await h.queue.counts()).failed === 1, 2000, 'the failed set');
      } finally {
        await h.queue.close();
      }
    });

    it('adds a job once per job id; counts waiting and delayed jobs', async () => {
      const h = open();
      const r = recorder();
      try {
        const ids = [await h.queue.enqueue('echo', { n: 1 }, { jobId: 'once-1' }), await h.queue.enqueue('echo', { n: 2 }, { jobId: 'once-1' })];
        expect(ids).toEqual(['once-1', 'once-1']);
        await h.queue.enqueue('echo', { n: 3 });
        await h.queue.enqueue('echo', { n: 4 }, { delayMs: 60_000 });
        expect(await h.queue.counts()).toEqual({ waiting: 2, active: 0, delayed: 1, failed: 0, completed: 0 });
        h.queue.startWorker(r.registry, { concurrency: 4 });
        await waitFor(() => h.runs.length === 2, 5000, 'two runs');
        await new Promise((res) => setTimeout(res, 100));
        expect(r.seen.map((s) => s.payload).sort((a, b) => (a as { n: number }).n - (b as { n: number }).n)).toEqual([{ n: 1 }, { n: 3 }]);
        // Still deduplicated once completed (kept for a while).
        await h.queue.enqueue('echo', { n: 5 }, { jobId: 'once-1' });
        await new Promise((res) => setTimeout(res, 100));
        expect(r.seen).toHaveLength(2);
        await waitFor(async () => (await h.queue.counts()).completed === 2, 2000, 'two completed');
        expect(await h.queue.counts()).toMatchObject({ waiting: 0, active: 0, delayed: 1 });
      } finally {
        await h.queue.close();
      }
    });

    it('runs a schedule repeatedly; two queues on one store registering it do not double it', async () => {
      const prefix = newPrefix();
      const a = open({}, prefix);
      // Two instances of a deployment (BullMQ: two queues on one prefix); in-process there is one store.
      const b = kind === 'bullmq' ? open({}, prefix) : a;
      const r = recorder();
      try {
        a.queue.startWorker(r.registry, { concurrency: 2 });
        if (b !== a) b.queue.startWorker(r.registry, { concurrency: 2 });
        const started = Date.now();
        await Promise.all([a.queue.every('tick', 250), b.queue.every('tick', 250)]);
        await new Promise((res) => setTimeout(res, 1300 - (Date.now() - started)));
        const ticks = r.seen.filter((s) => s.name === 'tick');
        // About 6 in 1.3 s (the first at once); doubled would be about 12.
        expect(ticks.length).toBeGreaterThanOrEqual(3);
        expect(ticks.length).toBeLessThanOrEqual(8);
        expect(new Set(ticks.map((t) => t.id)).size).toBe(ticks.length);
      } finally {
        await a.queue.close();
        if (b !== a) await b.queue.close();
      }
    });

    it('runs at most `concurrency` jobs at once, and close() waits for the running ones (their signal aborted) before resolving', async () => {
      const h = open();
      let running = 0;
      let most = 0;
      const finished: number[] = [];
      let aborted = false;
      const r = recorder(async (_name, ctx, p) => {
        running += 1;
        most = Math.max(most, running);
        await new Promise((res) => setTimeout(res, 300));
        aborted ||= ctx.signal.aborted;
        running -= 1;
        finished.push(p.n);
      });
      try {
        h.queue.startWorker(r.registry, { concurrency: 2 });
        for (let n = 1; n <= 3; n++) await h.queue.enqueue('slow', { n });
        await waitFor(() => r.seen.length === 2, 5000, 'two jobs started');
        expect(await h.queue.counts()).toMatchObject({ active: 2 });
      } finally {
        await h.queue.close();
      }
      // Both running jobs finished before close() resolved; the third never started.
      expect(finished.sort()).toEqual([1, 2]);
      expect(most).toBe(2);
      expect(aborted).toBe(true);
      expect(r.seen).toHaveLength(2);
    });
  });
}

describe('job queue (BullMQ) with Redis unreachable', () => {
  it('enqueue, counts and ping fail within their timeouts, the worker waits, nothing crashes, and close() returns', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const queue = createBullmqQueue({ catalog: CATALOG, log: createLogger('info', new Writable({ write: (_c, _e, cb) => cb() })), attempts: 1, backoffMs: 50, failedRetention: { maxAgeMs: 60_000, maxCount: 10 }, url, prefix: newPrefix(), opTimeoutMs: 500 });
    try {
      queue.startWorker(recorder().registry, { concurrency: 1 });
      const t0 = Date.now();
      await expect(queue.enqueue('echo', { n: 1 })).rejects.toThrow();
      await expect(queue.counts()).rejects.toThrow();
      await expect(queue.ping(300)).rejects.toThrow();
      await expect(queue.every('tick', 1000)).rejects.toThrow();
      expect(Date.now() - t0).toBeLessThan(3000);
      await waitFor(() => queue.errors() > 0, 5000, 'connection errors counted');
    } finally {
      const t1 = Date.now();
      await queue.close();
      expect(Date.now() - t1).toBeLessThan(3000);
    }
  });
});
