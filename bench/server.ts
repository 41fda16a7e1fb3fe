// A `carebase serve` process to benchmark: its own database (server mode) or data directory
// (embedded), the bench tenant, tokens for it, request logs on (discarded, or kept in
// BENCH_SERVER_LOG), and rate limits so high that the single benchmark user is never refused
// (each request still pays for its check).
import { spawn, execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBenchDatabase, freePort, REDIS_URL, waitReady } from './harness.js';

export interface BenchServer {
  base: string;
  pid: number;
  /** Headers of a clinician and of an admin of the bench tenant. */
  headers: Record<string, string>;
  adminHeaders: Record<string, string>;
  stop(): Promise<void>;
}

export interface ServerOptions {
  mode: 'embedded' | 'server';
  /** The checkout whose bin/carebase.mjs runs (another build, for an A/B). */
  root: string;
  /** Node options of the server process (--cpu-prof, say). */
  nodeArgs?: string[];
  /** More environment (tracing, audit settings, …), over the defaults below. */
  env?: Record<string, string>;
  /** The Redis URL in server mode (another database number keeps two servers apart). */
  redisUrl?: string;
  /**
   * Tracing on, this ratio of requests sampled (OTEL_TRACES_SAMPLER_ARG), exported over OTLP/HTTP
   * to a sink in this process that reads and discards every batch, as a collector would.
   */
  traceRatio?: string;
}
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



export async function startBenchServer(o: ServerOptions): Promise<BenchServer> {
  const cliPath = join(o.root, 'bin/carebase.mjs');
  const dataDir = mkdtempSync(join(tmpdir(), 'carebase-bench-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', SEED_DEMO: 'false', NODE_ENV: 'development' };
  for (const g of ['READ', 'WRITE']) env[`RATE_LIMIT_${g}_POINTS`] = '1000000000';
  const db = o.mode === 'server' ? await createBenchDatabase('carebase_bench') : undefined;
  // The pool at its default size (10). With 6 connections, writes measured 17–19 % more a second
  // than with 20 on these two cores (20 backends contend for them); 10 and 6 alike (RESULTS.md).
  if (db) Object.assign(env, { DATABASE_URL: db.url, REDIS_URL: o.redisUrl ?? REDIS_URL });
  const sink = o.traceRatio === undefined ? undefined : await startTraceSink();
  if (sink) Object.assign(env, { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_TRACES_SAMPLER_ARG: o.traceRatio! });
  Object.assign(env, o.env);
  const cleanUp = async () => {
    rmSync(dataDir, { recursive: true, force: true });
    await db?.drop();
    if (sink) {
      process.stderr.write(`trace sink received ${(sink.bytes() / 1e6).toFixed(1)} MB\n`);
      await sink.close();
    }
  };
  try {
    const cli = (...args: string[]) => execFileSync(process.execPath, [cliPath, ...args], { env, encoding: 'utf8' }).trim();
    cli('migrate');
    cli('tenant', 'create', 'bench');
    const token = cli('token', '--tenant', 'bench', '--role', 'clinician', '--sub', 'bench', '--ttl', '7200');
    const adminToken = cli('token', '--tenant', 'bench', '--role', 'admin', '--sub', 'bench-admin', '--ttl', '7200');
    // BENCH_SERVER_LOG=<file> keeps the server's log lines (each request's durationMs and time:
    // where a latency tail comes from); otherwise they are discarded.
    const logFile = process.env.BENCH_SERVER_LOG;
    const stdout = logFile ? openSync(logFile, 'w') : 'ignore';
    const server = spawn(process.execPath, [...(o.nodeArgs ?? []), cliPath, 'serve'], { env, stdio: ['ignore', stdout, 'inherit'] });
    if (typeof stdout === 'number') closeSync(stdout);
    const exited = new Promise((r) => server.once('exit', r));
    try {
      await waitReady(base);
    } catch (err) {
      server.kill('SIGTERM');
      await exited;
      throw err;
    }
    const stop = async () => {
      server.kill('SIGTERM');
      await exited;
      await cleanUp();
    };
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    return { base, pid: server.pid!, headers, adminHeaders: { ...headers, authorization: `Bearer ${adminToken}` }, stop };
  } catch (err) {
    await cleanUp();
    throw err;
  }
}
