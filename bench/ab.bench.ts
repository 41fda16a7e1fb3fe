// Two servers compared in one run, interleaved: A and B (two builds, or one build with two
// settings) run side by side in server mode, each with its own database and Redis database, and
// take turns under the same fixed offered load — A then B, then B then A, round after round — so
// that the machine's drift (on two shared cores it swings ±25 % within minutes) falls on both
// alike. Compared: the API process's CPU time per request, the rest of the machine's, and req/s
// (meaningful at saturation: a --rate above what the server answers); the summary gives each
// side's mean and the mean paired difference with its standard error.
//
//   npm run bench:ab -- --a=/tmp/before [--b=.] [--only=get] [--rate=2500] [--rounds=8] [--seconds=5]
//                       [--a-env=K=V,K=V] [--b-env=K=V] [--a-trace=0.1] [--b-trace=0.1]
//
// --a/--b: checkouts whose bin/carebase.mjs runs (both default to this one); --a-env/--b-env:
// more environment for that side (AUDIT_READS=sync, say); --a-trace/--b-trace: that side traces
// (OTEL_TRACES_SAMPLER_ARG) into an OTLP sink. Scenarios: get (cached patient), patch (patient),
// draft (questionnaire response), post (patient). Results go to stdout only.
import { resolve } from 'node:path';
import type autocannon from 'autocannon';
import { measure, REDIS_URL } from './harness.js';
import { benchAnswers } from './questionnaire.fixture.js';
import { createPatients, createQuestionnaire, patient, refreshVersions, roundRobin, startResponses, type Versioned } from './requests.js';
import { startBenchServer, type BenchServer } from './server.js';

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const HERE = new URL('..', import.meta.url).pathname;
const ROUNDS = Number(arg('rounds') ?? 8);
const SECONDS = Number(arg('seconds') ?? 5);
const RATE = Number(arg('rate') ?? 2500);
const SCENARIO = arg('only') ?? 'get';
const SCENARIOS = ['get', 'patch', 'draft', 'post'];
if (!SCENARIOS.includes(SCENARIO)) throw new Error(`--only must be one of ${SCENARIOS.join(', ')}`);

const envOf = (spec: string | undefined): Record<string, string> =>
  Object.fromEntries((spec ? spec.split(',') : []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));

interface Side {
  name: 'A' | 'B';
  server: BenchServer;
  /** The scenario's requests against this server (state, such as versions, kept across rounds). */
  requests: autocannon.Options;
  /** Brings that state up to date after a turn (see refreshVersions). */
  settle(): Promise<void>;
  apiUs: number[];
  restUs: number[];
  rps: number[];
}

async function prepare(name: 'A' | 'B', redisDb: number): Promise<Side> {
  const key = name.toLowerCase();
  const server = await startBenchServer({
    mode: 'server',
    root: resolve(arg(key) ?? HERE),
    env: envOf(arg(`${key}-env`)),
    traceRatio: arg(`${key}-trace`),
    redisUrl: `${REDIS_URL}/${redisDb}`,
  });
  const { base, headers } = server;
  const patients = await createPatients(server, SCENARIO === 'get' ? 1 : 1000);
  let requests: autocannon.Options;
  let settle = async () => {};
  if (SCENARIO === 'get') requests = { url: `${base}/v1/patients/${patients[0]!.id}`, headers };
  else if (SCENARIO === 'patch') {
    const pathOf = (p: Versioned) => `/v1/patients/${p.id}`;
    requests = roundRobin(base, headers, 'PATCH', patients, pathOf, (i) => ({ phone: `+1 555 ${String(i % 10_000).padStart(4, '0')}` }));
    settle = () => refreshVersions(server, patients, pathOf);
  } else if (SCENARIO === 'draft') {
    const drafts = await startResponses(server, await createQuestionnaire(server), patients, 1000);
    const pathOf = (r: Versioned) => `/v1/questionnaire-responses/${r.id}`;
    requests = roundRobin(base, headers, 'PATCH', drafts, pathOf, (i) => ({ item: benchAnswers(i) }));
    settle = () => refreshVersions(server, drafts, pathOf);
  } else {
    let n = 1000;
    requests = { url: base, requests: [{ method: 'POST', path: '/v1/patients', headers, setupRequest: (req) => ({ ...req, body: JSON.stringify(patient(n++)) }) }] };
  }
  return { name, server, requests, settle, apiUs: [], restUs: [], rps: [] };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs: number[]) => Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / Math.max(1, xs.length - 1));

const a = await prepare('A', 1);
let b: Side | undefined;
try {
  b = await prepare('B', 2);
  const sides = [a, b];
  // Warm both up (JIT, pools, caches) before anything counts.
  for (const s of sides) {
    await measure(s.server.pid, { connections: 50, duration: 3, overallRate: RATE, ...s.requests });
    await s.settle();
  }
  process.stdout.write(`${SCENARIO}, ${RATE} req/s offered, ${SECONDS} s per turn, ${ROUNDS} rounds; API CPU µs/req (other CPU µs/req)\n`);
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? [a, b] : [b, a];
    const line: string[] = [];
    for (const s of order) {
      const m = await measure(s.server.pid, { connections: 50, duration: SECONDS, overallRate: RATE, ...s.requests });
      await s.settle();
      const failed = m.result.non2xx + m.result.errors + m.result.timeouts;
      if (failed > 0) throw new Error(`${s.name}: ${failed} failed requests in round ${round + 1} (status codes ${JSON.stringify(m.result.statusCodeStats)}, ${m.result.errors} errors, ${m.result.timeouts} timeouts)`);
      s.apiUs.push(m.apiUs);
      s.restUs.push(m.restUs);
      s.rps.push(m.result.requests.average);
      line.push(`${s.name} ${m.apiUs} (${m.restUs}) at ${Math.round(m.result.requests.average)} req/s`);
    }
    process.stdout.write(`round ${round + 1}: ${line.join(' · ')}\n`);
  }
  // Paired by round: each difference is of two turns a few seconds apart.
  const compare = (what: string, as: number[], bs: number[]) => {
    const diff = bs.map((x, i) => x - as[i]!);
    const se = sd(diff) / Math.sqrt(diff.length);
    return `${what}: A mean ${mean(as).toFixed(0)}, B mean ${mean(bs).toFixed(0)}; B − A ${mean(diff).toFixed(1)} ± ${se.toFixed(1)} (${((mean(diff) / mean(as)) * 100).toFixed(1)} %)\n`;
  };
  process.stdout.write(compare('API CPU µs/req', a.apiUs, b.apiUs) + compare('other CPU µs/req', a.restUs, b.restUs) + compare('req/s', a.rps, b.rps));
} finally {
  await a.server.stop();
  await b?.server.stop();
}
