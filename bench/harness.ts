// What both benchmarks need around the server they measure: a free port, a throwaway PostgreSQL
// database, a wait for readiness, and the CPU time a process has used (from /proc).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
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

/** CPU ticks (user + system) a process has used so far. */
export function procTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]);
}
