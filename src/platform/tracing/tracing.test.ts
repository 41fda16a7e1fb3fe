// Tracing settings (OTEL_*) as loadConfig reads them, and the scrubbing of spans before export.
// The SDK itself, in a real `carebase serve`, is test/tracing.test.ts.
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../config.js';
import { configProblems } from '../../../test/helpers/config.js';
import { scrubSpan } from './scrub.js';

describe('tracing settings', () => {
  it('is off without OTEL_EXPORTER_OTLP_ENDPOINT, or with OTEL_SDK_DISABLED=true', () => {
    expect(loadConfig({}).tracing).toBeUndefined();
    expect(loadConfig({ OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER_ARG: '0.5' }).tracing).toBeUndefined();
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' }).tracing).toBeUndefined();
  });

  it('reads the standard variables, with the OTLP/HTTP traces path appended to the endpoint', () => {
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).tracing).toEqual({
      tracesUrl: 'http://collector:4318/v1/traces',
      headers: {},
      serviceName: 'carebase',
      resourceAttributes: {},
      sampleRatio: 1,
    });
    expect(
      loadConfig({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otlp.example.com/base/',
        OTEL_EXPORTER_OTLP_HEADERS: 'api-key=s3cr%3Dt, x-team = ops',
        OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=staging,service.name=ignored',
        OTEL_SERVICE_NAME: 'carebase-eu',
        OTEL_TRACES_SAMPLER_ARG: '0.25',
      }).tracing,
    ).toEqual({
      tracesUrl: 'https://otlp.example.com/base/v1/traces',
      headers: { 'api-key': 's3cr=t', 'x-team': 'ops' },
      serviceName: 'carebase-eu',
      resourceAttributes: { 'deployment.environment': 'staging', 'service.name': 'ignored' },
      sampleRatio: 0.25,
    });
    // service.name from OTEL_RESOURCE_ATTRIBUTES when OTEL_SERVICE_NAME is unset, as the specification says.
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_RESOURCE_ATTRIBUTES: 'service.name=api' }).tracing?.serviceName).toBe('api');
  });

  it('refuses malformed values at start, one line per problem naming the variable, without quoting headers', () => {
    expect(
      configProblems({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'grpc://collector:4317',
        OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer abc,missing-equals',
        OTEL_RESOURCE_ATTRIBUTES: 'bad key=1',
        OTEL_TRACES_SAMPLER_ARG: '1.5',
        OTEL_SDK_DISABLED: 'maybe',
      }),
    ).toEqual([
      'OTEL_EXPORTER_OTLP_ENDPOINT: must be an http(s) URL (the OTLP/HTTP receiver, e.g. http://collector:4318)',
      'OTEL_EXPORTER_OTLP_HEADERS: entry 2 is not key=value (OTEL_EXPORTER_OTLP_HEADERS is a comma-separated list of key=value with percent-encoded values)',
      'OTEL_RESOURCE_ATTRIBUTES: entry 1 is not key=value (OTEL_RESOURCE_ATTRIBUTES is a comma-separated list of key=value with percent-encoded values)',
      expect.stringMatching(/^OTEL_TRACES_SAMPLER_ARG: /),
      expect.stringMatching(/^OTEL_SDK_DISABLED: /),
    ]);
    expect(configProblems({ OTEL_TRACES_SAMPLER_ARG: 'half' })).toEqual([expect.stringMatching(/^OTEL_TRACES_SAMPLER_ARG: /)]);
    expect(configProblems({ OTEL_EXPORTER_OTLP_HEADERS: 'k=%E0%A4%A' })).toEqual([expect.stringMatching(/^OTEL_EXPORTER_OTLP_HEADERS: entry 1 is not key=value/)]);
  });
});

const span = (over: Partial<ReadableSpan>): ReadableSpan =>
  ({
    name: 'GET /v1/patients',
    kind: SpanKind.SERVER,
    spanContext: () => ({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1 }),
    startTime: [1, 0],
    endTime: [1, 5],
    status: { code: SpanStatusCode.UNSET },
    attributes: {},
    links: [],
    events: [],
    duration: [0, 5],
    ended: true,
    resource: {} as ReadableSpan['resource'],
    instrumentationScope: { name: 'test' },
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
    ...over,
  }) as ReadableSpan;

describe('scrubSpan', () => {
  it('drops query strings, the client address and headers from server spans, keeping paths and routes', () => {
    const s = scrubSpan(
      span({
        attributes: {
          'url.path': '/v1/patients?name=Núñez',
          'url.query': 'name=Núñez',
          'url.full': 'http://user:pw@api:8080/v1/patients?name=Núñez#x',
          'http.target': '/v1/patients?identifier=urn:ssn|123-45-6789',
          'http.route': '/v1/patients',
          'client.address': '203.0.113.9',
          'network.peer.address': '203.0.113.9',
          'http.request.header.authorization': ['Bearer x'],
          'http.response.status_code': 200,
        },
      }),
    );
    expect(s.attributes).toEqual({
      'url.path': '/v1/patients',
      'url.full': 'http://api:8080/v1/patients',
      'http.target': '/v1/patients',
      'http.route': '/v1/patients',
      'http.response.status_code': 200,
    });
    expect(s.spanContext().traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
  });

  it('keeps only the origin of an outgoing call (a webhook URL\'s path is its credential)', () => {
    const s = scrubSpan(span({ kind: SpanKind.CLIENT, attributes: { 'url.full': 'https://hooks.slack.com/services/T0/B0/secret?x=1', 'url.path': '/services/T0/B0/secret', 'server.address': 'hooks.slack.com', 'network.peer.address': '198.51.100.7' } }));
    expect(s.attributes).toEqual({ 'url.full': 'https://hooks.slack.com', 'server.address': 'hooks.slack.com', 'network.peer.address': '198.51.100.7' });
  });

  it('drops error messages (status, exception events) and SQL parameter values, keeping the error type and stack frames', () => {
    const s = scrubSpan(
      span({
        kind: SpanKind.CLIENT,
        status: { code: SpanStatusCode.ERROR, message: 'duplicate key value (email)=(ana@example.org)' },
        attributes: { 'db.query.text': 'select 1 where x = $1', 'db.query.parameter.0': 'Núñez', 'db.postgresql.values': ['Núñez'] },
        events: [
          {
            name: 'exception',
            time: [1, 1],
            attributes: {
              'exception.type': 'DatabaseError',
              'exception.message': 'duplicate key value (email)=(ana@example.org)',
              'exception.stacktrace': 'DatabaseError: duplicate key value (email)=(ana@example.org)\n    at Parser.parse (x.js:1:1)\n    at run (y.js:2:2)',
            },
          },
        ],
      }),
    );
    expect(s.status).toEqual({ code: SpanStatusCode.ERROR });
    expect(s.attributes).toEqual({ 'db.query.text': 'select 1 where x = $1' });
    expect(s.events[0]!.attributes).toEqual({ 'exception.type': 'DatabaseError', 'exception.stacktrace': '    at Parser.parse (x.js:1:1)\n    at run (y.js:2:2)' });
    expect(JSON.stringify(s)).not.toContain('ana@example.org');
  });
});
