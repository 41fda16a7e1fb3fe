// What the benchmarks need around the server they measure: a free port, a throwaway PostgreSQL
// database, a wait for readiness, and the CPU time a process and the machine have used (/proc).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import autocannon from 'autocannon';
import pg from 'pg';

export const ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = 'redis://127.0.0.1:6379';
/** USER_HZ is 100 on Linux: /proc reports CPU time in hundredths of a second. */
export const TICK_MS = 10;

export const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

export async function waitReady(base: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`${base}/health/ready`)).ok) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('server did not become ready');
}

/** A new database on the local PostgreSQL; drop() removes it (also with connections left open). */
export async function createBenchDatabase(prefix: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `${prefix}_${Date.now()}`;
  const admin = async (sql: string) => {
    const c = new pg.Client({ connectionString: ADMIN_URL });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await admin(`create database ${name}`);
  return { url: ADMIN_URL.replace(/\/postgres$/, `/${name}`), drop: () => admin(`drop database if exists ${name} with (force)`) };
}

/** CPU ticks (user + system) a process (or, with `tid`, one of its threads) has used so far. */
export function procTicks(pid: number, tid?: number): number {
  const f = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]);
}

// Throughput on two shared cores swings ±25 % between runs; CPU time per request moves far less,
// so each run also reports it: the API process's (from /proc/<pid>/stat) and the rest of the
// machine's busy time (/proc/stat: PostgreSQL, Redis, the kernel) minus the load generator's own.
const busyTicks = () => {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return f[0]! + f[1]! + f[2]! + f[5]! + f[6]!; // user, nice, system, irq, softirq (not idle, iowait, steal)
};

export interface Measured {
  result: autocannon.Result;
  /** CPU time per request (µs) of the API process, and of everything else but the load generator. */
  apiUs: number;
  restUs: number;
  /**
   * The part of apiUs spent on the API's main thread, the one that answers requests: the rest is
   * its other threads' (audit signing, span export, GC helpers, libuv's pool).
   */
  mainUs: number;
}

/** One autocannon run against the server process `pid`, with the CPU time per request it cost. */
export function measure(pid: number, opts: autocannon.Options): Promise<Measured> {
  const api0 = procTicks(pid);
  const main0 = procTicks(pid, pid);
  const busy0 = busyTicks();
  const own0 = process.cpuUsage();
  return new Promise((resolve, reject) => {
    autocannon(opts, (err, result) => {
      if (err) return reject(err);
      const own = process.cpuUsage(own0);
      const api = (procTicks(pid) - api0) * TICK_MS * 1000;
      const rest = (busyTicks() - busy0) * TICK_MS * 1000 - api - (own.user + own.system);
      const n = Math.max(1, result.requests.total);
      const main = (procTicks(pid, pid) - main0) * TICK_MS * 1000;
      resolve({ result, apiUs: Math.round(api / n), restUs: Math.round(Math.max(0, rest) / n), mainUs: Math.round(main / n) });
    });
  });
}
