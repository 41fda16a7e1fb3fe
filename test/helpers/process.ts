// Runs the real `carebase` CLI (bin/carebase.mjs) as child processes, with an explicit, minimal
// environment, a fresh DATA_DIR per scenario and a free loopback port. Every child is tracked so
// a test's afterEach/afterAll can kill whatever is still running, even after a failure.
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';
import { loadDevIssuer } from '../../src/auth/dev-issuer.js';
import type { Role } from '../../src/auth/principal.js';
import { DEV_AUDIENCE, DEV_ISSUER } from '../../src/config.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(ROOT, 'bin/carebase.mjs');

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves once the process has exited (never rejects). */
  readonly exited: Promise<Exit>;
  readonly hasExited: () => boolean;
}

const live = new Set<Proc>();
const dirs = new Set<string>();
// Last resort: should the test worker itself go away, take its children with it.
process.once('exit', () => {
  for (const p of live) if (!p.hasExited()) p.child.kill('SIGKILL');
});

/**
 * PATH and HOME from this process, plus exactly the given variables. Nothing else is inherited,
 * so a TEST_DATABASE_URL / DATABASE_URL / NODE_ENV of the test runner never leaks into a child.
 */
export function cliEnv(vars: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  if (process.env.PATH) env.PATH = process.env.PATH;
  if (process.env.HOME) env.HOME = process.env.HOME;
  return { ...env, ...vars };
}

/** Starts `carebase <args>`. Output is collected; the process is tracked until it exits. */
export function spawnCli(args: string[], env: Record<string, string>, owner?: Set<Proc>): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let done = false;
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<Exit>((res) => {
    // 'close' (not 'exit') so that all output has been read when it resolves.
    child.on('close', (code, signal) => {
      done = true;
      res({ code, signal });
    });
    child.on('error', () => {
      done = true;
      res({ code: null, signal: null });
    });
  });
  const p: Proc = { child, pid: child.pid ?? -1, stdout: () => out, stderr: () => err, exited, hasExited: () => done };
  live.add(p);
  owner?.add(p);
  void exited.then(() => {
    live.delete(p);
    owner?.delete(p);
  });
  return p;
}

export interface CliResult extends Exit {
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (killed after timeoutMs). */
export async function runCli(args: string[], env: Record<string, string>, timeoutMs = 120_000, owner?: Set<Proc>): Promise<CliResult> {
  const p = spawnCli(args, env, owner);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  try {
    const e = await p.exited;
    return { ...e, stdout: p.stdout(), stderr: p.stderr() };
  } finally {
    clearTimeout(timer);
  }
}

/** Kills (SIGKILL, by pid) every child of this test file still running and waits for them to go. */
export function killAll(): Promise<void> {
  return killProcs(live);
}

async function killProcs(procs: Set<Proc>): Promise<void> {
  const running = [...procs];
  for (const p of running) {
    if (!p.hasExited()) p.child.kill('SIGKILL');
  }
  await Promise.all(running.map((p) => p.exited));
}

/** A fresh, empty temporary directory, removed by cleanupDirs(). */
export function tempDir(prefix = 'carebase-proc-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(d);
  return d;
}

/** A fresh DATA_DIR whose embedded database is a copy of the harness's migrated template (fast to open). */
export function migratedDataDir(): string {
  const d = tempDir();
  cpSync(inject('pgliteTemplate'), join(d, 'pg'), { recursive: true });
  return d;
}

export function cleanupDirs(): void {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}

/** A port that was free a moment ago: bind port 0, read it, release it. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => res(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls until fn() returns true; throws (with what() for context) after timeoutMs. */
export async function waitFor(fn: () => boolean | Promise<boolean>, timeoutMs: number, what: () => string): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
    await sleep(100);
  }
}

export interface Server {
  proc: Proc;
  port: number;
  url: string;
  dataDir: string;
  env: Record<string, string>;
}

/**
 * Starts `carebase serve` on a free port and waits until GET /health/ready answers 200.
 * Fails early, with the child's output, if it exits first.
 */
export async function startServe(dataDir: string, vars: Record<string, string> = {}, timeoutMs = 150_000, owner?: Set<Proc>): Promise<Server> {
  const port = await freePort();
  const env = cliEnv({ DATA_DIR: dataDir, HOST: '127.0.0.1', PORT: String(port), ...vars });
  const proc = spawnCli(['serve'], env, owner);
  const url = `http://127.0.0.1:${port}`;
  await waitUntilReady(proc, url, timeoutMs);
  return { proc, port, url, dataDir, env };
}

export async function waitUntilReady(proc: Proc, url: string, timeoutMs = 150_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (proc.hasExited()) {
      const e = await proc.exited;
      throw new Error(`carebase serve exited (code ${e.code}, signal ${e.signal}) before it was ready\nstdout:\n${proc.stdout()}\nstderr:\n${proc.stderr()}`);
    }
    try {
      const res = await fetch(`${url}/health/ready`, { signal: AbortSignal.timeout(2000) });
      if (res.status === 200) return;
      await res.body?.cancel();
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`carebase serve not ready after ${timeoutMs} ms\nstdout:\n${proc.stdout()}\nstderr:\n${proc.stderr()}`);
    await sleep(100);
  }
}

/** Sends SIGTERM and waits for the exit (SIGKILL and an error after timeoutMs). */
export async function stop(proc: Proc, timeoutMs = 10_000): Promise<Exit> {
  proc.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
  const r = await Promise.race([proc.exited, timedOut]);
  clearTimeout(timer);
  if (r === 'timeout') {
    proc.child.kill('SIGKILL');
    throw new Error(`process ${proc.pid} did not exit within ${timeoutMs} ms of SIGTERM\nstdout:\n${proc.stdout()}\nstderr:\n${proc.stderr()}`);
  }
  return r;
}

/** `carebase token ...` run as a child with the given env (same DATA_DIR as the server). */
export async function cliToken(env: Record<string, string>, args: string[], owner?: Set<Proc>): Promise<string> {
  const r = await runCli(['token', ...args], env, 120_000, owner);
  if (r.code !== 0) throw new Error(`carebase token failed (${r.code}): ${r.stderr}`);
  const token = r.stdout.trim().split('\n').at(-1)!;
  if (!/^[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) throw new Error(`carebase token printed no token: ${r.stdout}`);
  return token;
}

/**
 * The children of one test, killed when that test finishes (pass the test context's
 * onTestFinished): safe with concurrent tests, where a file-wide afterEach would kill the
 * children of the tests still running.
 */
export function procScope(onFinished: (fn: () => Promise<void>) => void) {
  const mine = new Set<Proc>();
  onFinished(() => killProcs(mine));
  return {
    spawn: (args: string[], env: Record<string, string>) => spawnCli(args, env, mine),
    run: (args: string[], env: Record<string, string>, timeoutMs = 120_000) => runCli(args, env, timeoutMs, mine),
    serve: (dataDir: string, vars: Record<string, string> = {}, timeoutMs = 150_000) => startServe(dataDir, vars, timeoutMs, mine),
    token: (env: Record<string, string>, args: string[]) => cliToken(env, args, mine),
  };
}

/**
 * A token signed in-process with the development issuer's key from DATA_DIR (the key a server
 * on that directory created), for scenarios that do not test the `token` command itself: one
 * child process less.
 */
export async function keyFileToken(dataDir: string, c: { tenant: string; roles: Role[]; sub: string; patientId?: string }): Promise<string> {
  const issuer = await loadDevIssuer(join(dataDir, 'dev-issuer'), DEV_ISSUER, DEV_AUDIENCE);
  return issuer.sign(c);
}
