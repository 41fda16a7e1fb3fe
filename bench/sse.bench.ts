// Server-Sent Events fan-out under write load, against a real `carebase serve` process on loopback
// in server mode (PostgreSQL + Redis, a database created and dropped by the run).
//
// SUBSCRIBERS lean SSE clients (raw node:http requests, one socket each, no agent pooling; all in
// this process) subscribe to `patients/{id}` topics spread evenly over PATIENTS patients of one
// tenant (subscriber i follows patient i % PATIENTS). Once every one has received `event: ready`,
// RATE PATCH /v1/patients/{id} per second (round-robin over the patients, each with the right
// If-Match) run for SECONDS. Each write's send time (just before the request is written) is kept
// under "patient id:new version"; each `patient.updated` a subscriber receives is matched to it, so
// the latency is write sent → event parsed by the subscriber (the response time is reported too).
// Every subscriber must receive every event of its patient exactly once and in order; gaps,
// duplicates and out-of-order events are counted.
//
// Usage: npm run bench:sse [-- SECONDS] [--subscribers=N] [--patients=N] [--rate=N]
// BENCH_DISPATCH_INTERVAL_MS sets the server's EVENTS_DISPATCH_INTERVAL_MS (default: the server's).
// Results are appended to RESULTS.md.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request, type IncomingMessage } from 'node:http';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createBenchDatabase, freePort, procTicks, REDIS_URL, TICK_MS, waitReady } from './harness.js';

const ROOT = new URL('..', import.meta.url).pathname;
const CLI = join(ROOT, 'bin/carebase.mjs');
const arg = (name: string, dflt: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt);
const SECONDS = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 20);
const SUBSCRIBERS = arg('subscribers', 2000);
const PATIENTS = arg('patients', 200);
const RATE = arg('rate', 200);
/** Subscriptions opened at once while connecting. */
const CONNECT_CONCURRENCY = 50;
/** After the last write, how long to wait for its events to reach every subscriber. */
const DRAIN_MS = 10_000;
const dispatchInterval = process.env.BENCH_DISPATCH_INTERVAL_MS;

const out = (s: string) => process.stdout.write(s);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Synthetic patients only: nothing here is real PHI, and nothing of a patient is printed.
const patient = (i: number) => ({
  name: { given: ['Sse', `P${i}`], family: 'Bench' },
  birthDate: '1980-01-01',
  gender: 'other',
  identifiers: [{ system: 'urn:bench:mrn', value: `S-${i}` }],
});

const rssMb = (pid: number) => {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return Math.round(kb / 1024);
};

const pct = (sorted: number[], p: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!);
const ms = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : 'n/a');

/** One subscriber's view: what it received for its patient, checked as it arrives. */
interface Subscriber {
  patient: number;
  ready: boolean;
  /** Last event id received (0 before any) and the patient's last version seen (its version when subscribing, at first). */
  lastId: bigint;
  lastVersion: number;
  received: number;
  duplicates: number;
  /** Versions skipped over (an event arrived whose version is ahead of the next expected). */
  gaps: number;
  outOfOrder: number;
  closedEarly: boolean;
  res?: IncomingMessage;
}

interface WriteRecord {
  sent: number;
  answered?: number;
}

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'carebase-ssebench-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', SEED_DEMO: 'false', NODE_ENV: 'development' };
  // One user opens every subscription and sends every write: limits high enough never to refuse.
  for (const g of ['READ', 'WRITE', 'REALTIME']) env[`RATE_LIMIT_${g}_POINTS`] = '1000000000';
  if (dispatchInterval) env.EVENTS_DISPATCH_INTERVAL_MS = dispatchInterval;
  const db = await createBenchDatabase('carebase_ssebench');
  env.DATABASE_URL = db.url;
  env.DATABASE_POOL_SIZE = '20';
  env.REDIS_URL = REDIS_URL;

  let server: ChildProcess | undefined;
  const subs: Subscriber[] = [];
  const writeAgent = new Agent({ keepAlive: true, maxSockets: 64 });
  try {
    const cli = (...args: string[]) => execFileSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8' }).trim();
    cli('migrate');
    cli('tenant', 'create', 'bench');
    const token = cli('token', '--tenant', 'bench', '--role', 'clinician', '--sub', 'sse-bench', '--ttl', '7200');
    // Request logs stay on (written to /dev/null): their cost is part of what is measured.
    server = spawn(process.execPath, [CLI, 'serve'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
    const pid = server.pid!;
    await waitReady(base);
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };

    const ids: string[] = [];
    const versions: number[] = [];
    for (let i = 0; i < PATIENTS; i += 25) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(25, PATIENTS - i) }, async (_, j) => {
          const res = await fetch(`${base}/v1/patients`, { method: 'POST', headers, body: JSON.stringify(patient(i + j)) });
          if (res.status !== 201) throw new Error(`creating a patient: ${res.status}`);
          return (await res.json()) as { id: string; version: number };
        }),
      );
      for (const p of batch) {
        ids.push(p.id);
        versions.push(p.version);
      }
    }
    const indexOf = new Map(ids.map((id, i) => [id, i]));
    await sleep(1000);
    const rssIdle = rssMb(pid);

    // ---- subscribers ----
    const writes = new Map<string, WriteRecord>();
    const latSent: number[] = [];
    const latAnswered: number[] = [];
    let unmatched = 0;
    let subscribeFailures = 0;
    let readyCount = 0;

    const handleBlock = (s: Subscriber, block: string, now: number) => {
      let event = 'message';
      let id: string | undefined;
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('id: ')) id = line.slice(4);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (event === 'ready') {
        s.ready = true;
        readyCount++;
        return;
      }
      if (event === 'closing') {
        s.closedEarly = true;
        return;
      }
      if (!event.includes('.') || id === undefined) return;
      const e = JSON.parse(data) as { id: string; resource: { id: string; version: number } };
      const eid = BigInt(id);
      if (eid <= s.lastId) {
        s.duplicates++;
        return;
      }
      s.lastId = eid;
      const v = e.resource.version;
      if (indexOf.get(e.resource.id) !== s.patient) {
        s.outOfOrder++; // an event of another topic: never expected
        return;
      }
      if (v <= s.lastVersion) s.outOfOrder++;
      else if (v > s.lastVersion + 1) s.gaps += v - s.lastVersion - 1;
      if (v > s.lastVersion) s.lastVersion = v;
      s.received++;
      const w = writes.get(`${e.resource.id}:${v}`);
      if (!w) {
        unmatched++;
        return;
      }
      latSent.push(now - w.sent);
      if (w.answered !== undefined) latAnswered.push(now - w.answered);
    };

    const open = (s: Subscriber) =>
      new Promise<void>((resolve) => {
        const req = request(`${base}/v1/events?topic=${encodeURIComponent(`patients/${ids[s.patient]}`)}`, { agent: false, headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } });
        req.on('response', (res) => {
          s.res = res;
          if (res.statusCode !== 200) {
            subscribeFailures++;
            res.resume();
            return resolve();
          }
          res.setEncoding('utf8');
          let buf = '';
          res.on('data', (chunk: string) => {
            const now = performance.now();
            buf += chunk;
            let end: number;
            while ((end = buf.indexOf('\n\n')) >= 0) {
              const block = buf.slice(0, end);
              buf = buf.slice(end + 2);
              const wasReady = s.ready;
              handleBlock(s, block, now);
              if (!wasReady && s.ready) resolve();
            }
          });
          res.on('close', () => {
            s.closedEarly = true;
            resolve();
          });
        });
        req.on('error', () => {
          subscribeFailures++;
          resolve();
        });
        req.end();
      });

    const t0 = performance.now();
    for (let i = 0; i < SUBSCRIBERS; i++) subs.push({ patient: i % PATIENTS, ready: false, lastId: 0n, lastVersion: versions[i % PATIENTS]!, received: 0, duplicates: 0, gaps: 0, outOfOrder: 0, closedEarly: false });
    let nextSub = 0;
    await Promise.all(
      Array.from({ length: CONNECT_CONCURRENCY }, async () => {
        while (nextSub < subs.length) await open(subs[nextSub++]!);
      }),
    );
    const connectSeconds = (performance.now() - t0) / 1000;
    if (readyCount < SUBSCRIBERS) throw new Error(`only ${readyCount} of ${SUBSCRIBERS} subscribers got ready (${subscribeFailures} refused or failed)`);
    // Every subscriber is live: a stream that ends from now on is counted.
    for (const s of subs) s.closedEarly = false;
    await sleep(1000);
    const rssSubscribed = rssMb(pid);
    out(`${SUBSCRIBERS} subscribers ready in ${connectSeconds.toFixed(1)} s; writing ${RATE}/s for ${SECONDS} s\n`);

    // ---- writes ----
    const inFlight = new Set<number>();
    const successes = new Array<number>(PATIENTS).fill(0);
    let sent = 0;
    let ok = 0;
    let failed = 0;
    let skipped = 0;
    let next = 0;
    const writeOne = () => {
      const i = next++ % PATIENTS;
      if (inFlight.has(i)) {
        skipped++; // its previous write is still unanswered: its version is unknown
        return;
      }
      inFlight.add(i);
      const v = versions[i]!;
      const key = `${ids[i]}:${v + 1}`;
      const body = JSON.stringify({ phone: `+1 555 ${String(sent % 10_000).padStart(4, '0')}` });
      const req = request(`${base}/v1/patients/${ids[i]}`, { method: 'PATCH', agent: writeAgent, headers: { ...headers, 'if-match': `W/"${v}"`, 'content-length': Buffer.byteLength(body) } });
      const rec: WriteRecord = { sent: performance.now() };
      writes.set(key, rec);
      sent++;
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => {
          inFlight.delete(i);
          if (res.statusCode === 200) {
            rec.answered = performance.now();
            versions[i] = v + 1;
            successes[i]!++;
            ok++;
          } else {
            writes.delete(key);
            failed++;
          }
        });
      });
      req.on('error', () => {
        inFlight.delete(i);
        writes.delete(key);
        failed++;
      });
      req.end(body);
    };

    const cpu0 = procTicks(pid);
    const own0 = process.cpuUsage();
    const w0 = performance.now();
    const total = RATE * SECONDS;
    let due = 0;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const elapsed = (performance.now() - w0) / 1000;
        const target = Math.min(total, Math.floor(elapsed * RATE));
        while (due < target) {
          due++;
          writeOne();
        }
        if (due >= total) {
          clearInterval(timer);
          resolve();
        }
      }, 2);
    });
    const writeSeconds = (performance.now() - w0) / 1000;
    // Wait for the answers, then for every expected event to arrive.
    const drainUntil = performance.now() + DRAIN_MS;
    while (inFlight.size > 0 && performance.now() < drainUntil) await sleep(10);
    const expectedOf = (s: Subscriber) => successes[s.patient]!;
    while (performance.now() < drainUntil && subs.some((s) => s.received < expectedOf(s))) await sleep(20);
    const elapsed = (performance.now() - w0) / 1000;
    const serverCpuPct = ((procTicks(pid) - cpu0) * TICK_MS) / (elapsed * 1000) * 100;
    const own = process.cpuUsage(own0);
    const genCpuPct = ((own.user + own.system) / 1000 / (elapsed * 1000)) * 100;
    const rssEnd = rssMb(pid);

    const expected = subs.reduce((n, s) => n + expectedOf(s), 0);
    const received = subs.reduce((n, s) => n + s.received, 0);
    const missing = subs.reduce((n, s) => n + Math.max(0, expectedOf(s) - s.received), 0);
    const duplicates = subs.reduce((n, s) => n + s.duplicates, 0);
    const gaps = subs.reduce((n, s) => n + s.gaps, 0);
    const outOfOrder = subs.reduce((n, s) => n + s.outOfOrder, 0);
    const closedEarly = subs.filter((s) => s.closedEarly).length;
    latSent.sort((a, b) => a - b);
    latAnswered.sort((a, b) => a - b);

    const rows: [string, string][] = [
      ['subscribers (ready / refused)', `${readyCount} / ${subscribeFailures}`],
      ['patients (topics), subscribers per topic', `${PATIENTS}, ${SUBSCRIBERS / PATIENTS}`],
      ['time to open all subscriptions', `${connectSeconds.toFixed(1)} s`],
      ['writes: target rate, duration', `${RATE}/s, ${SECONDS} s`],
      ['writes: sent / 200 / failed / skipped (in flight)', `${sent} / ${ok} / ${failed} / ${skipped}`],
      ['writes: achieved rate (200s)', `${(ok / writeSeconds).toFixed(1)}/s`],
      ['events delivered / expected', `${received} / ${expected}`],
      ['missing / duplicates / gaps / out of order / unmatched', `${missing} / ${duplicates} / ${gaps} / ${outOfOrder} / ${unmatched}`],
      ['subscribers closed during the run', String(closedEarly)],
      ['latency write sent → event, p50 / p95 / p99 / max', `${ms(pct(latSent, 50))} / ${ms(pct(latSent, 95))} / ${ms(pct(latSent, 99))} / ${ms(latSent.at(-1) ?? NaN)} ms`],
      ['latency write answered → event, p50 / p95 / p99', `${ms(pct(latAnswered, 50))} / ${ms(pct(latAnswered, 95))} / ${ms(pct(latAnswered, 99))} ms`],
      ['server RSS: idle / subscribed / end', `${rssIdle} / ${rssSubscribed} / ${rssEnd} MB`],
      ['server CPU during writes (+ drain)', `${serverCpuPct.toFixed(0)} % of one core`],
      ['load generator CPU during writes (+ drain)', `${genCpuPct.toFixed(0)} % of one core`],
    ];
    const header = `\n## ${new Date().toISOString()} — ${availableParallelism()} cores (${cpus()[0]?.model.trim()}), Node ${process.version}, SSE fan-out (bench/sse.bench.ts), server mode, EVENTS_DISPATCH_INTERVAL_MS ${dispatchInterval ?? 'default'}\n\n| metric | value |\n|---|---|\n`;
    const table = rows.map(([k, v]) => `| ${k} | ${v} |`).join('\n') + '\n';
    out(header + table);
    appendFileSync(join(ROOT, 'bench/RESULTS.md'), header + table);
  } finally {
    for (const s of subs) s.res?.destroy();
    writeAgent.destroy();
    if (server && server.exitCode === null && server.signalCode === null) {
      server.kill('SIGTERM');
      const exited = new Promise((r) => server!.once('exit', r));
      const t = setTimeout(() => server!.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dataDir, { recursive: true, force: true });
    await db.drop();
  }
}

await main();
