// Two servers compared in one run, interleaved: A and B (two builds, or one build with two
// settings) run side by side in server mode, each with its own database and Redis database, and
// take turns under the same fixed offered load — A then B, then B then A, round after round — so
// that the machine's drift (on two shared cores it swings ±25 % within minutes) falls on both
// alike. Compared: the API process's CPU time per request (and its main thread's, the one that
// answers requests), the rest of the machine's, and req/s (meaningful at saturation: a --rate
// above what the server answers); the summary gives each side's mean and the mean paired
// difference with its standard error. --pairs=N repeats all of it with N pairs of fresh processes
// (see compare() below for why that matters).
//
//   npm run bench:ab -- --a=/tmp/before [--b=.] [--only=get] [--rate=2500] [--rounds=8] [--seconds=5]
//                       [--pairs=3] [--a-env=K=V,K=V] [--b-env=K=V] [--a-trace=0.1] [--b-trace=0.1]
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
const PAIRS = Number(arg('pairs') ?? 1);
const SECONDS = Number(arg('seconds') ?? 5);
const RATE = Number(arg('rate') ?? 2500);
const SCENARIO = arg('only') ?? 'get';
const SCENARIOS = ['get', 'patch', 'draft', 'post'];
if (!SCENARIOS.includes(SCENARIO)) throw new Error(`--only must be one of ${SCENARIOS.join(', ')}`);

// K=V pairs separated by commas; a comma not followed by `NAME=` belongs to the value
// (`CORS_ORIGINS=https://a,https://b`), which a plain split would have cut into a stray variable.
const envOf = (spec: string | undefined): Record<string, string> =>
  Object.fromEntries((spec ? spec.split(/,(?=[A-Za-z_][A-Za-z0-9_]*=)/) : []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));

interface Side {
  name: 'A' | 'B';
  server: BenchServer;
  /** The scenario's requests against this server (state, such as versions, kept across rounds). */
  requests: autocannon.Options;
  /** Brings that state up to date after a turn (see refreshVersions). */
  settle(): Promise<void>;
  apiUs: number[];
  mainUs: number[];
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
    // As in http.bench.ts: BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles both servers.
    nodeArgs: process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [],
    redisUrl: `${REDIS_URL}/${redisDb}`,
  });
  try {
    return await seed(name, server);
  } catch (err) {
    await server.stop();
    throw err;
  }
}

/** The scenario's data on a new server, and its requests. */
async function seed(name: 'A' | 'B', server: BenchServer): Promise<Side> {
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
  return { name, server, requests, settle, apiUs: [], mainUs: [], restUs: [], rps: [] };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs: number[]) => Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / Math.max(1, xs.length - 1));

interface PairResult {
  a: Side;
  b: Side;
}

/** One pair of fresh server processes (started in the given order), warmed up, then ROUNDS rounds of turns. */
async function runPair(pair: number): Promise<PairResult> {
  // Which side starts first alternates by pair: the first server starts and warms up earlier.
  const first = pair % 2 === 0 ? 'A' : 'B';
  const s1 = await prepare(first, first === 'A' ? 1 : 2);
  let s2: Side | undefined;
  try {
    s2 = await prepare(first === 'A' ? 'B' : 'A', first === 'A' ? 2 : 1);
    const [a, b] = first === 'A' ? [s1, s2] : [s2, s1];
    // Warm both up (JIT, pools, caches) before anything counts.
    for (const s of [s1, s2]) {
      await measure(s.server.pid, { connections: 50, duration: 3, overallRate: RATE, ...s.requests });
      await s.settle();
    }
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? [a, b] : [b, a];
      const line: string[] = [];
      for (const s of order) {
        const m = await measure(s.server.pid, { connections: 50, duration: SECONDS, overallRate: RATE, ...s.requests });
        await s.settle();
        const failed = m.result.non2xx + m.result.errors + m.result.timeouts;
        if (failed > 0) throw new Error(`${s.name}: ${failed} failed requests in round ${round + 1} (status codes ${JSON.stringify(m.result.statusCodeStats)}, ${m.result.errors} errors, ${m.result.timeouts} timeouts)`);
        s.apiUs.push(m.apiUs);
        s.mainUs.push(m.mainUs);
        s.restUs.push(m.restUs);
        s.rps.push(m.result.requests.average);
        line.push(`${s.name} ${m.apiUs}/${m.mainUs} (${m.restUs}) at ${Math.round(m.result.requests.average)} req/s`);
      }
      process.stdout.write(`pair ${pair + 1} round ${round + 1}: ${line.join(' · ')}\n`);
    }
    return { a, b };
  } finally {
    await s1.server.stop();
    await s2?.server.stop();
  }
}

process.stdout.write(`${SCENARIO}, ${RATE} req/s offered, ${SECONDS} s per turn, ${PAIRS} pair(s) of processes × ${ROUNDS} rounds; API CPU µs/req / its main thread (other CPU µs/req)\n`);
const results: PairResult[] = [];
for (let pair = 0; pair < PAIRS; pair++) results.push(await runPair(pair));

// Turns are paired by round (a few seconds apart, so the machine's drift cancels). Processes are
// the larger unit: two processes of one build can differ by 10–20 % for as long as they run (the
// JIT does not optimize the same way twice), which pairing by round does not remove. With several
// pairs, the standard error is taken over the pairs' mean differences.
const compare = (what: string, pick: (s: Side) => number[]) => {
  const perPair = results.map((r) => {
    const as = pick(r.a);
    const diff = pick(r.b).map((x, i) => x - as[i]!);
    return { diff: mean(diff), se: sd(diff) / Math.sqrt(diff.length), base: mean(as), b: mean(pick(r.b)) };
  });
  const diffs = perPair.map((p) => p.diff);
  const d = mean(diffs);
  const se = results.length > 1 ? sd(diffs) / Math.sqrt(diffs.length) : perPair[0]!.se;
  const base = mean(perPair.map((p) => p.base));
  const pairs = results.length > 1 ? ` [pairs: ${diffs.map((x) => x.toFixed(1)).join(', ')}]` : ' [one pair: the error is within it and leaves out how processes differ]';
  return `${what}: A mean ${base.toFixed(0)}, B mean ${mean(perPair.map((p) => p.b)).toFixed(0)}; B − A ${d.toFixed(1)} ± ${se.toFixed(1)} (${((d / base) * 100).toFixed(1)} %)${pairs}\n`;
};
process.stdout.write(compare('API CPU µs/req', (s) => s.apiUs) + compare('main thread µs/req', (s) => s.mainUs) + compare('other CPU µs/req', (s) => s.restUs) + compare('req/s', (s) => s.rps));
