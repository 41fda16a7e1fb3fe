// A request's SERVER span ends exactly once: with its status when answered, as failed and
// `carebase.aborted` when the client went away first; requests not sampled get no span and no
// listener. (The real tracer, end to end in a real `carebase serve`: test/tracing.test.ts.)
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { installTracing, type ServerSpan, type SpanAttributes } from '../platform/tracing/tracing.js';
import { registerRouteOf } from './route.js';
import { registerTracing } from './tracing.js';

interface Ended {
  name: string;
  attributes: SpanAttributes;
  failed: boolean;
}

async function app(sampled: boolean) {
  const ended: Ended[] = [];
  let closeListeners = -1;
  installTracing({
    serverSpan(_name, _headers, attributes, of) {
      if (!sampled) return undefined;
      attributes(of);
      return {
        trace: { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
        end: (n, a, failed) => void ended.push({ name: n, attributes: a, failed }),
      } satisfies ServerSpan;
    },
    span: (_p, _n, _k, _a, fn) => fn(undefined),
    consumerSpan: (_c, _n, _a, fn) => fn(undefined),
    shutdown: async () => {},
  });
  const fastify = Fastify();
  registerRouteOf(fastify);
  registerTracing(fastify);
  fastify.get('/fast/:id', async (request) => {
    closeListeners = request.raw.listenerCount('close');
    return { ok: true };
  });
  fastify.get('/slow', async () => {
    await new Promise((r) => setTimeout(r, 300));
    return { ok: true };
  });
  await fastify.listen({ port: 0, host: '127.0.0.1' });
  return { fastify, ended, port: (fastify.server.address() as AddressInfo).port, closeListeners: () => closeListeners };
}

afterEach(() => installTracing(undefined));

describe('request spans', () => {
  it('end once with the route and status when answered', async () => {
    const a = await app(true);
    const res = await fetch(`http://127.0.0.1:${a.port}/fast/123?name=x`);
    expect(res.status).toBe(200);
    await new Promise((r) => setTimeout(r, 50));
    expect(a.ended).toEqual([{ name: 'GET /fast/:id', attributes: { 'http.route': '/fast/:id', 'http.response.status_code': 200 }, failed: false }]);
    await a.fastify.close();
  });

  it('end once, failed and marked aborted, when the client goes away first', async () => {
    const a = await app(true);
    await new Promise<void>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port: a.port, path: '/slow' });
      req.on('error', () => resolve());
      req.end();
      setTimeout(() => req.destroy(), 50);
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(a.ended).toEqual([{ name: 'GET /slow', attributes: { 'http.route': '/slow', 'carebase.aborted': true }, failed: true }]);
    await a.fastify.close();
  });

  it('a request not sampled gets no span and no close listener of ours', async () => {
    const sampled = await app(true);
    await fetch(`http://127.0.0.1:${sampled.port}/fast/1`);
    const withSpan = sampled.closeListeners();
    await sampled.fastify.close();
    const unsampled = await app(false);
    await fetch(`http://127.0.0.1:${unsampled.port}/fast/1`);
    expect(unsampled.ended).toEqual([]);
    expect(unsampled.closeListeners()).toBe(withSpan - 1);
    await unsampled.fastify.close();
  });
});
