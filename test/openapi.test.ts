// GET /v1/openapi.json describes every /v1 route the app registered, with request and response
// schemas and the contract's error responses, and is a valid OpenAPI 3.1 document.
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS } from '../src/errors.js';
import { client } from './helpers/http.js';
import { startServer, type TestServer } from './helpers/server.js';

type Operation = {
  operationId?: string;
  parameters?: { in: string; name: string; required?: boolean; schema?: unknown }[];
  requestBody?: { content: Record<string, { schema?: Record<string, unknown> }> };
  responses: Record<string, { description?: string; content?: Record<string, { schema?: Record<string, unknown> }> }>;
  security?: Record<string, unknown>[];
};
type Doc = {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, any>; securitySchemes?: Record<string, unknown> };
};

const ENVELOPE_REF = '#/components/schemas/ErrorEnvelope';
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/**
 * The routes the app registered, from Fastify's own route tree (printRoutes with
 * commonPrefix: false prints full path segments, children indented under their parent).
 */
function registeredRoutes(tree: string): Map<string, Set<string>> {
  const routes = new Map<string, Set<string>>();
  const stack: { depth: number; path: string }[] = [];
  for (const line of tree.split('\n')) {
    const m = /^([│ ]*)[├└]── (.+?) \(([A-Z, ]+)\)$/.exec(line) ?? /^([│ ]*)[├└]── (.+)$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    while (stack.length > 0 && stack[stack.length - 1]!.depth >= depth) stack.pop();
    const path = `${stack[stack.length - 1]?.path ?? ''}${m[2]!}`;
    stack.push({ depth, path });
    if (m[3]) {
      const set = routes.get(path) ?? new Set<string>();
      for (const method of m[3].split(/,\s*/)) set.add(method);
      routes.set(path, set);
    }
  }
  return routes;
}

const toOpenApiPath = (p: string) => p.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

describe('OpenAPI document', () => {
  let srv: TestServer;
  let doc: Doc;
  let v1Routes: Map<string, Set<string>>;
  beforeAll(async () => {
    srv = await startServer('pglite');
    const res = await client(srv.url)('GET', '/v1/openapi.json');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    doc = res.body as Doc;
    v1Routes = new Map([...registeredRoutes(srv.app.printRoutes({ commonPrefix: false }))].filter(([p]) => p.startsWith('/v1/')));
  });
  afterAll(() => srv?.close());

  const v1Operations = () =>
    Object.entries(doc.paths)
      .filter(([p]) => p.startsWith('/v1/'))
      .flatMap(([path, ops]) => Object.entries(ops).filter(([m]) => HTTP_METHODS.includes(m)).map(([method, op]) => ({ path, method, op })));

  it('is OpenAPI 3.1.0, public (no token needed), with title and version', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.title).toEqual(expect.any(String));
    expect(doc.info.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('the route tree parser sees the CRUD routes (guards the comparison below)', () => {
    expect(v1Routes.get('/v1/patients')).toEqual(new Set(['GET', 'HEAD', 'POST']));
    expect(v1Routes.get('/v1/patients/:id')).toEqual(new Set(['GET', 'HEAD', 'PATCH', 'DELETE']));
    expect(v1Routes.size).toBeGreaterThanOrEqual(7);
  });

  it('every /v1 route the app registered appears in paths with each of its methods (HEAD aside)', () => {
    const missing: string[] = [];
    for (const [path, methods] of v1Routes) {
      const ops = doc.paths[toOpenApiPath(path)];
      for (const m of methods) {
        if (m === 'HEAD') continue;
        if (!ops?.[m.toLowerCase()]) missing.push(`${m} ${path}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('documents nothing under /v1 that the app does not serve', () => {
    const extra: string[] = [];
    for (const { path, method } of v1Operations()) {
      const fastifyPath = path.replace(/\{([A-Za-z0-9_]+)\}/g, ':$1');
      if (!v1Routes.get(fastifyPath)?.has(method.toUpperCase())) extra.push(`${method} ${path}`);
    }
    expect(extra).toEqual([]);
  });

  it('each /v1 operation documents its success response with a schema (204 and a WebSocket upgrade\'s 101 without a body)', () => {
    for (const { path, method, op } of v1Operations()) {
      const ok = Object.keys(op.responses).filter((s) => /^(2\d\d|101)$/.test(s));
      expect(ok.length, `${method} ${path}`).toBe(1);
      const status = ok[0]!;
      if (status === '204' || status === '101') {
        expect(op.responses[status]!.content, `${method} ${path}`).toBeUndefined();
      } else {
        // JSON, or for streamed routes NDJSON (export) or Server-Sent Events with the schema of one item.
        const content = op.responses[status]!.content ?? {};
        const schema = content['application/json']?.schema ?? content['application/x-ndjson']?.schema ?? content['text/event-stream']?.schema;
        expect(schema, `${method} ${path} ${status}`).toBeDefined();
        expect(Object.keys(schema!).length, `${method} ${path}`).toBeGreaterThan(0);
      }
    }
  });

  it('POST and PATCH operations document a JSON request body schema; path parameters are documented', () => {
    for (const { path, method, op } of v1Operations()) {
      if (method === 'post' || method === 'patch') {
        const schema = op.requestBody?.content['application/json']?.schema;
        expect(schema, `${method} ${path}`).toBeDefined();
        expect(schema!.type, `${method} ${path}`).toBe('object');
        expect(schema!.properties, `${method} ${path}`).toBeDefined();
      }
      for (const [, name] of path.matchAll(/\{([^}]+)\}/g)) {
        const p = op.parameters?.find((x) => x.in === 'path' && x.name === name);
        expect(p, `${method} ${path} param ${name}`).toBeDefined();
        expect(p!.required).toBe(true);
      }
    }
  });

  it('list operations document their query parameters', () => {
    const names = (path: string) => doc.paths[path]!.get!.parameters!.filter((p) => p.in === 'query').map((p) => p.name);
    expect(names('/v1/patients')).toEqual(expect.arrayContaining(['limit', 'cursor', 'name', 'birthDate', 'identifier']));
    expect(names('/v1/providers')).toEqual(expect.arrayContaining(['limit', 'cursor']));
    expect(names('/v1/locations')).toEqual(expect.arrayContaining(['limit', 'cursor']));
    expect(names('/v1/questionnaires')).toEqual(expect.arrayContaining(['limit', 'cursor', 'status', 'title', 'url']));
  });

  it('each /v1 operation has 400, 401 (unless public), 404 and 500 responses referencing ErrorEnvelope', () => {
    const problems: string[] = [];
    for (const { path, method, op } of v1Operations()) {
      const isPublic = op.security === undefined || op.security.length === 0;
      const wanted = ['400', '404', '500', ...(isPublic ? [] : ['401', '403'])];
      for (const status of wanted) {
        const ref = op.responses[status]?.content?.['application/json']?.schema?.$ref;
        if (ref !== ENVELOPE_REF) problems.push(`${method} ${path} ${status}: ${String(ref)}`);
        if (!op.responses[status]?.description) problems.push(`${method} ${path} ${status}: no description`);
      }
      // Every documented 4xx/5xx uses the envelope.
      for (const [status, r] of Object.entries(op.responses)) {
        if (/^[45]\d\d$/.test(status) && r.content?.['application/json']?.schema?.$ref !== ENVELOPE_REF) problems.push(`${method} ${path} ${status} not an envelope`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('only /v1/openapi.json is public among /v1 operations; the others require bearerAuth', () => {
    const publicOps = v1Operations().filter(({ op }) => !op.security || op.security.length === 0).map(({ path, method }) => `${method} ${path}`);
    expect(publicOps).toEqual(['get /v1/openapi.json']);
    expect(doc.components.securitySchemes).toMatchObject({ bearerAuth: { type: 'http', scheme: 'bearer' } });
    for (const { op } of v1Operations()) if (op.security?.length) expect(op.security).toEqual([{ bearerAuth: [] }]);
  });

  it('PATCH and DELETE operations document 412 and 428; POST and PATCH document 413 and 415', () => {
    const ops = v1Operations();
    // As many as the app registered (at least the three CRUD resources), so a new feature needs no edit here.
    const registered = (m: string) => [...v1Routes.values()].filter((methods) => methods.has(m)).length;
    expect(ops.filter((o) => o.method === 'patch').length).toBe(registered('PATCH'));
    expect(ops.filter((o) => o.method === 'delete').length).toBe(registered('DELETE'));
    expect(registered('PATCH')).toBeGreaterThanOrEqual(3);
    for (const { path, method, op } of ops) {
      if (method === 'patch' || method === 'delete') {
        for (const s of ['412', '428']) expect(op.responses[s]?.content?.['application/json']?.schema?.$ref, `${method} ${path} ${s}`).toBe(ENVELOPE_REF);
        expect(op.parameters?.some((p) => p.in === 'header' && p.name.toLowerCase() === 'if-match'), `${method} ${path} If-Match`).toBe(true);
      }
      if (method === 'post' || method === 'patch') {
        for (const s of ['413', '415']) expect(op.responses[s]?.content?.['application/json']?.schema?.$ref, `${method} ${path} ${s}`).toBe(ENVELOPE_REF);
      }
    }
  });

  it('the ErrorEnvelope component lists every error code of ERRORS and the envelope fields', () => {
    const env = doc.components.schemas.ErrorEnvelope;
    expect(env).toBeDefined();
    expect(env.required).toEqual(expect.arrayContaining(['success', 'error', 'timestamp']));
    const error = env.properties.error;
    expect(error.required).toEqual(expect.arrayContaining(['code', 'message', 'requestId']));
    const code = error.properties.code;
    const listed = new Set<string>([...(code.enum ?? []), ...((code.anyOf ?? []) as { enum?: string[]; const?: string }[]).flatMap((a) => a.enum ?? (a.const ? [a.const] : []))]);
    expect([...listed].sort()).toEqual(Object.keys(ERRORS).sort());
  });

  it('all $refs resolve inside the document', () => {
    const refs = new Set<string>();
    const walk = (v: unknown) => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') {
        for (const [k, x] of Object.entries(v)) {
          if (k === '$ref' && typeof x === 'string') refs.add(x);
          else walk(x);
        }
      }
    };
    walk(doc);
    expect(refs.size).toBeGreaterThan(0);
    for (const ref of refs) {
      expect(ref, ref).toMatch(/^#\/components\/schemas\/[A-Za-z0-9_.-]+$/);
      expect(doc.components.schemas[ref.split('/').pop()!], ref).toBeDefined();
    }
  });

  it('validates against the OpenAPI 3.1 schema', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc) as Record<string, unknown>);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('the validator does reject a broken document (guards the test above)', async () => {
    const broken = structuredClone(doc) as any;
    delete broken.info;
    broken.paths['/v1/patients'].get.responses = 'nope';
    expect((await new Validator().validate(broken)).valid).toBe(false);
  });

  it('GET /docs serves the interactive docs as HTML', async () => {
    const res = await fetch(`${srv.url}/docs`, { redirect: 'follow' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toMatch(/<html/i);
    expect(html).toMatch(/swagger/i);
  });
});
