// Load scenarios for the patient endpoints, against a real `carebase serve` process on loopback,
// in server mode (PostgreSQL + Redis) and embedded mode (PGlite, in-process cache):
// GET /v1/patients/{id} (served by the write-through cache), GET /v1/patients (a list: always the
// database), POST /v1/patients and PATCH /v1/patients/{id}. Bounded: N seconds per scenario
// (default 10). Usage: npm run bench [-- embedded|server] [N]; results are appended to RESULTS.md.
import { appendFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import type autocannon from 'autocannon';
import { measure, type Measured } from './harness.js';
import { benchAnswers } from './questionnaire.fixture.js';
import { createPatients, createQuestionnaire, patient, roundRobin, startResponses } from './requests.js';
import { startBenchServer } from './server.js';

const ROOT = new URL('..', import.meta.url).pathname;
// BENCH_SERVER_ROOT=<another checkout> benchmarks that build's server with these same scenarios
// (an A/B against an earlier commit: git worktree add /tmp/before <rev>, and link node_modules).
const SERVER_ROOT = process.env.BENCH_SERVER_ROOT ?? ROOT;
const SECONDS = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 10);
const CONNECTIONS = 50;
const modes = process.argv.filter((a) => a === 'embedded' || a === 'server');
// --only=get,list,post,patch,response,draft,submit runs just those scenarios (all by default).
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
const wanted = (name: string) => !only || only.includes(name);
// --rate=N: offer N requests a second in all (autocannon's overallRate) instead of as many as the
// server answers. Builds compared at the same rate, below saturation, differ in CPU per request
// by what they cost, not by how the two shared cores happened to be contended.
const rateArg = process.argv.find((a) => a.startsWith('--rate='));
const RATE = rateArg === undefined ? undefined : Number(rateArg.slice('--rate='.length));
// BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" (for instance) profiles the server under load.
const serverNodeArgs = process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
// --trace[=ratio]: the server traces (OTEL_TRACES_SAMPLER_ARG = ratio, default 1; see server.ts).
const traceArg = process.argv.find((a) => a === '--trace' || a.startsWith('--trace='));
const traceRatio = traceArg === undefined ? undefined : traceArg === '--trace' ? '1' : traceArg.slice('--trace='.length);

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

let serverPid = 0;
const run = (opts: autocannon.Options) => measure(serverPid, { connections: CONNECTIONS, duration: SECONDS, ...(RATE ? { overallRate: RATE } : {}), ...opts });

const row = (mode: string, scenario: string, { result: r, apiUs, restUs }: Measured): Row => ({
  mode,
  scenario,
  // Not requests.average (the mean of whole seconds): a run of a fixed `amount` ends mid-second.
  rps: Math.round(r.requests.total / r.duration),
  p50: r.latency.p50,
  p99: r.latency.p99,
  non2xx: r.non2xx,
  errors: r.errors + r.timeouts,
  apiUs,
  restUs,
});

async function benchMode(mode: 'embedded' | 'server'): Promise<Row[]> {
  const label = traceRatio ? `${mode}, traced ${traceRatio}` : mode;
  const server = await startBenchServer({ mode, root: SERVER_ROOT, nodeArgs: serverNodeArgs, traceRatio });
  serverPid = server.pid;
  const { base, headers } = server;
  const rows: Row[] = [];
  try {
    const created = await createPatients(server, 1000);

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
    const q = wanted('response') || wanted('draft') || wanted('submit') ? await createQuestionnaire(server) : '';
    const drafts = wanted('response') || wanted('draft') ? await startResponses(server, q, created, 1000) : [];
    // One response, read repeatedly: issue 3's other cached read (its answers are the larger body).
    if (wanted('response')) {
      const url = `${base}/v1/questionnaire-responses/${drafts[0]!.id}`;
      await run({ url, headers, duration: 2 });
      rows.push(row(label, 'GET /v1/questionnaire-responses/{id} (cached)', await run({ url, headers })));
    }
    if (wanted('draft')) rows.push(row(label, 'PATCH /v1/questionnaire-responses/{id} (draft save)', await run(roundRobin(base, headers, 'PATCH', drafts, (r) => `/v1/questionnaire-responses/${r.id}`, (i) => ({ item: benchAnswers(i) })))));
    // A draft can be submitted once: exactly one request per draft (`amount`), so no answer is the
    // 409 of a second submission; enough drafts for a few seconds on a fast machine.
    const toSubmit = wanted('submit') ? await startResponses(server, q, created, mode === 'server' ? 15_000 : 2000) : [];
    if (wanted('submit')) rows.push(row(label, 'POST /v1/questionnaire-responses/{id}/submit', await run({ ...roundRobin(base, headers, 'POST', toSubmit, (r) => `/v1/questionnaire-responses/${r.id}/submit`, () => ({})), amount: toSubmit.length })));
  } finally {
    await server.stop();
  }
  return rows;
}

const results: Row[] = [];
for (const mode of modes.length ? modes : ['server', 'embedded']) results.push(...(await benchMode(mode as 'embedded' | 'server')));

const header = `\n## ${new Date().toISOString()} — ${availableParallelism()} cores (${cpus()[0]?.model.trim()}), Node ${process.version}, ${CONNECTIONS} connections${RATE ? `, ${RATE} req/s offered` : ''}, ${SECONDS} s per scenario\n\n| mode | scenario | req/s | p50 ms | p99 ms | non-2xx | errors | API CPU µs/req | other CPU µs/req |\n|---|---|---|---|---|---|---|---|---|\n`;
const table = results.map((r) => `| ${r.mode} | ${r.scenario} | ${r.rps} | ${r.p50} | ${r.p99} | ${r.non2xx} | ${r.errors} | ${r.apiUs} | ${r.restUs} |`).join('\n');
process.stdout.write(header + table + '\n');
appendFileSync(join(ROOT, 'bench/RESULTS.md'), header + table + '\n');
