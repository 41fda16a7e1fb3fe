// Load scenarios for the patient endpoints, against a real `carebase serve` process on loopback,
// in server mode (PostgreSQL + Redis) and embedded mode (PGlite, in-process cache):
// GET /v1/patients/{id} (served by the write-through cache), GET /v1/patients (a list: always the
// database), POST /v1/patients and PATCH /v1/patients/{id}. Bounded: N seconds per scenario
// (default 10). Usage: npm run bench [-- embedded|server] [N]; results are appended to RESULTS.md.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { createBenchDatabase, freePort, procTicks, REDIS_URL, TICK_MS, waitReady } from './harness.js';
import { benchAnswers, benchQuestionnaire } from './questionnaire.fixture.js';

const ROOT = new URL('..', import.meta.url).pathname;
// BENCH_SERVER_ROOT=<another checkout> benchmarks that build's server with these same scenarios
// (an A/B against an earlier commit: git worktree add /tmp/before <rev>, and link node_modules).
const CLI = join(process.env.BENCH_SERVER_ROOT ?? ROOT, 'bin/carebase.mjs');
const SECONDS = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 10);
const CONNECTIONS = 50;
const modes = process.argv.filter((a) => a === 'embedded' || a === 'server');
// --only=get,list,post,patch,draft,submit runs just those scenarios (all by default).
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
const wanted = (name: string) => !only || only.includes(name);
// --rate=N: offer N requests a second in all (autocannon's overallRate) instead of as many as the
// server answers. Builds compared at the same rate, below saturation, differ in CPU per request
// by what they cost, not by how the two shared cores happened to be contended.
const rateArg = process.argv.find((a) => a.startsWith('--rate='));
const RATE = rateArg === undefined ? undefined : Number(rateArg.slice('--rate='.length));
// BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" (for instance) profiles the server under load.
const serverNodeArgs = process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
// --trace[=ratio]: the server traces (OTEL_TRACES_SAMPLER_ARG = ratio, default 1) and exports over
// OTLP/HTTP to a sink in this process that reads and discards every batch, as a collector would.
const traceArg = process.argv.find((a) => a === '--trace' || a.startsWith('--trace='));
const traceRatio = traceArg === undefined ? undefined : traceArg === '--trace' ? '1' : traceArg.slice('--trace='.length);

/** An OTLP/HTTP receiver that accepts everything; counts the bytes it was sent. */
async function startTraceSink(): Promise<{ url: string; bytes: () => number; close: () => Promise<void> }> {
  let bytes = 0;
  const sink = createServer((req, res) => {
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  const port = await freePort();
  await new Promise<void>((resolve) => sink.listen(port, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${port}`, bytes: () => bytes, close: () => new Promise((resolve) => sink.close(() => resolve())) };
}

interface Row {
  mode: string;
  scenario: string;
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  /** CPU time per request (µs) of the API process, and of everything else but the load generator. */
  apiUs: number;
  restUs: number;
}

const patient = (i: number) => ({
  name: { given: ['Bench', `P${i}`], family: 'Müller' },
  birthDate: '1980-01-01',
  gender: 'other',
  identifiers: [{ system: 'urn:bench:mrn', value: `B-${i}` }],
  email: `bench${i}@example.org`,
});

// Throughput on two shared cores swings ±25 % between runs; CPU time per request moves far less,
// so each scenario also reports it: the API process's (from /proc/<pid>/stat) and the rest of the
// machine's busy time (/proc/stat: PostgreSQL, Redis, the kernel) minus the load generator's own.
const busyTicks = () => {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return f[0]! + f[1]! + f[2]! + f[5]! + f[6]!; // user, nice, system, irq, softirq (not idle, iowait, steal)
};
let serverPid = 0;

interface Measured {
  result: autocannon.Result;
  apiUs: number;
  restUs: number;
}

function run(opts: autocannon.Options): Promise<Measured> {
  const api0 = procTicks(serverPid);
  const busy0 = busyTicks();
  const own0 = process.cpuUsage();
  return new Promise((resolve, reject) => {
    autocannon({ connections: CONNECTIONS, duration: SECONDS, ...(RATE ? { overallRate: RATE } : {}), ...opts }, (err, result) => {
      if (err) return reject(err);
      const own = process.cpuUsage(own0);
      const api = (procTicks(serverPid) - api0) * TICK_MS * 1000;
      const rest = (busyTicks() - busy0) * TICK_MS * 1000 - api - (own.user + own.system);
      const n = Math.max(1, result.requests.total);
      resolve({ result, apiUs: Math.round(api / n), restUs: Math.round(Math.max(0, rest) / n) });
    });
  });
}

interface Versioned {
  id: string;
  version: number;
}

/**
 * Requests that each change the next item of `items` with the version last seen for it (from the
 * ETag'd body of the previous answer), so a correct server answers 2xx to every one.
 */
function roundRobin(base: string, headers: Record<string, string>, method: 'PATCH' | 'POST', items: Versioned[], pathOf: (v: Versioned) => string, bodyOf: (i: number) => unknown): autocannon.Options {
  let next = 0;
  return {
    url: base,
    requests: [
      {
        method,
        setupRequest: (req, context) => {
          const ctx = context as { v?: Versioned };
          const v = items[next % items.length]!;
          ctx.v = v;
          return { ...req, path: pathOf(v), headers: { ...headers, 'if-match': `W/"${v.version}"` }, body: JSON.stringify(bodyOf(next++)) };
        },
        onResponse: (status, _body, context) => {
          const ctx = context as { v?: Versioned };
          // A change bumps the version by exactly one; counting spares the load generator (which
          // shares the cores with the server) a JSON.parse of every answer.
          if (status === 200 && ctx.v) ctx.v.version++;
        },
      },
    ],
  };
}

const row = (mode: string, scenario: string, { result: r, apiUs, restUs }: Measured): Row => ({
  mode,
  scenario,
  rps: Math.round(r.requests.average),
  p50: r.latency.p50,
  p99: r.latency.p99,
  non2xx: r.non2xx,
  errors: r.errors + r.timeouts,
  apiUs,
  restUs,
});

async function benchMode(mode: 'embedded' | 'server'): Promise<Row[]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'carebase-bench-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', SEED_DEMO: 'false', NODE_ENV: 'development' };
  // One user sends everything: limits high enough never to refuse, while each request still pays for its check.
  for (const g of ['READ', 'WRITE']) env[`RATE_LIMIT_${g}_POINTS`] = '1000000000';
  const sink = traceRatio === undefined ? undefined : await startTraceSink();
  if (sink) {
    env.OTEL_EXPORTER_OTLP_ENDPOINT = sink.url;
    env.OTEL_TRACES_SAMPLER_ARG = traceRatio!;
  }
  const label = sink ? `${mode}, traced ${traceRatio}` : mode;
  let db: Awaited<ReturnType<typeof createBenchDatabase>> | undefined;
  if (mode === 'server') {
    db = await createBenchDatabase('carebase_bench');
    env.DATABASE_URL = db.url;
    env.DATABASE_POOL_SIZE = '20';
    env.REDIS_URL = REDIS_URL;
  }
  const cli = (...args: string[]) => execFileSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8' }).trim();
  cli('migrate');
  cli('tenant', 'create', 'bench');
  const token = cli('token', '--tenant', 'bench', '--role', 'clinician', '--sub', 'bench', '--ttl', '7200');
  const adminToken = cli('token', '--tenant', 'bench', '--role', 'admin', '--sub', 'bench-admin', '--ttl', '7200');
  // Request logs stay on (written to /dev/null): their cost is part of what is measured.
  const server: ChildProcess = spawn(process.execPath, [...serverNodeArgs, CLI, 'serve'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  serverPid = server.pid!;
  const rows: Row[] = [];
  try {
    await waitReady(base);
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const created: Versioned[] = [];
    for (let i = 0; i < 1000; i++) {
      const res = await fetch(`${base}/v1/patients`, { method: 'POST', headers, body: JSON.stringify(patient(i)) });
      const body = (await res.json()) as { id: string; version: number };
      created.push({ id: body.id, version: body.version });
    }

    // Warm-up, then measure.
    await run({ url: `${base}/v1/patients/${created[0]!.id}`, headers, duration: 2 });
    if (wanted('get')) rows.push(row(label, 'GET /v1/patients/{id} (cached)', await run({ url: `${base}/v1/patients/${created[0]!.id}`, headers })));
    // A list always reads PostgreSQL: the uncached read path.
    if (wanted('list')) rows.push(row(label, 'GET /v1/patients?limit=20 (database)', await run({ url: `${base}/v1/patients?limit=20`, headers })));

    let n = 1000;
    if (wanted('post')) rows.push(
      row(label, 'POST /v1/patients', await run({
        url: base,
        requests: [{ method: 'POST', path: '/v1/patients', headers, setupRequest: (req) => ({ ...req, body: JSON.stringify(patient(n++)) }) }],
      })),
    );

    // Each request patches the next patient with the version it last saw, so conflicts only
    // arise if one patient were in flight twice (1,000 patients, 50 connections: it is not).
    if (wanted('patch')) rows.push(row(label, 'PATCH /v1/patients/{id}', await run(roundRobin(base, headers, 'PATCH', created, (p) => `/v1/patients/${p.id}`, (i) => ({ phone: `+1 555 ${String(i % 10_000).padStart(4, '0')}` })))));

    // Questionnaire responses: draft saves (PATCH of the answers) and submissions (validation and
    // server-side scoring), each on its own response.
    const adminHeaders = { ...headers, authorization: `Bearer ${adminToken}` };
    const q = (await (await fetch(`${base}/v1/questionnaires`, { method: 'POST', headers: adminHeaders, body: JSON.stringify(benchQuestionnaire) })).json()) as { id: string };
    const startResponses = async (n: number) => {
      const out: Versioned[] = [];
      for (let i = 0; i < n; i += 50) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(50, n - i) }, async (_, j) => {
            const res = await fetch(`${base}/v1/questionnaire-responses`, { method: 'POST', headers, body: JSON.stringify({ questionnaireId: q.id, patientId: created[(i + j) % created.length]!.id, item: benchAnswers(i + j) }) });
            return (await res.json()) as Versioned;
          }),
        );
        out.push(...batch);
      }
      return out;
    };
    const drafts = wanted('draft') ? await startResponses(1000) : [];
    if (wanted('draft')) rows.push(row(label, 'PATCH /v1/questionnaire-responses/{id} (draft save)', await run(roundRobin(base, headers, 'PATCH', drafts, (r) => `/v1/questionnaire-responses/${r.id}`, (i) => ({ item: benchAnswers(i) })))));
    const toSubmit = wanted('submit') ? await startResponses(mode === 'server' ? 6000 : 2000) : [];
    if (wanted('submit')) rows.push(row(label, 'POST /v1/questionnaire-responses/{id}/submit', await run({ ...roundRobin(base, headers, 'POST', toSubmit, (r) => `/v1/questionnaire-responses/${r.id}/submit`, () => ({})), duration: 5 })));
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    rmSync(dataDir, { recursive: true, force: true });
    await db?.drop();
    if (sink) {
      process.stderr.write(`trace sink received ${(sink.bytes() / 1e6).toFixed(1)} MB\n`);
      await sink.close();
    }
  }
  return rows;
}

const results: Row[] = [];
for (const mode of modes.length ? modes : ['server', 'embedded']) results.push(...(await benchMode(mode as 'embedded' | 'server')));

const header = `\n## ${new Date().toISOString()} — ${availableParallelism()} cores (${cpus()[0]?.model.trim()}), Node ${process.version}, ${CONNECTIONS} connections${RATE ? `, ${RATE} req/s offered` : ''}, ${SECONDS} s per scenario\n\n| mode | scenario | req/s | p50 ms | p99 ms | non-2xx | errors | API CPU µs/req | other CPU µs/req |\n|---|---|---|---|---|---|---|---|---|\n`;
const table = results.map((r) => `| ${r.mode} | ${r.scenario} | ${r.rps} | ${r.p50} | ${r.p99} | ${r.non2xx} | ${r.errors} | ${r.apiUs} | ${r.restUs} |`).join('\n');
process.stdout.write(header + table + '\n');
appendFileSync(join(ROOT, 'bench/RESULTS.md'), header + table + '\n');
