// ops/: the Prometheus alert rules and the Grafana dashboard. Checked with promtool when it is
// installed (CI installs it), structurally always, and against what the server really exports:
// every metric a rule or a panel names must appear in /metrics.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { patientInput } from './helpers/factories.js';
import { client } from './helpers/http.js';
import { ROOT } from './helpers/process.js';
import { startServer, storageModes, type TestServer } from './helpers/server.js';

const RULES = join(ROOT, 'ops/prometheus/carebase.rules.yml');
const DASHBOARD = join(ROOT, 'ops/grafana/carebase.dashboard.json');

interface Rule {
  alert: string;
  expr: string;
  for: string;
  labels: { severity: string };
  annotations: { summary: string; description: string };
}
const rules = (parse(readFileSync(RULES, 'utf8')) as { groups: { name: string; rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { title: string; uid: string; panels: { title: string; type: string; targets: { expr: string; refId: string }[] }[] };

/** Metric names in a PromQL expression: identifiers followed by `{`, `[`, `)` or whitespace, minus PromQL's own words. */
const PROMQL = new Set(['sum', 'rate', 'increase', 'max', 'min', 'by', 'le', 'histogram_quantile', 'clamp_min', 'or', 'and', 'unless', 'on', 'without', 'avg', 'count']);
function metricNames(expr: string): string[] {
  const withoutStrings = expr.replace(/"[^"]*"/g, '""').replace(/\{[^}]*\}/g, '{}');
  return [...withoutStrings.matchAll(/\b([a-z_][a-z0-9_]*)\b(?!\s*\()/g)].map((m) => m[1]!).filter((n) => !PROMQL.has(n) && n.includes('_'));
}

/** The base metric of a series name (histograms export _bucket, _sum and _count). */
const base = (name: string) => name.replace(/_(bucket|sum|count)$/, '');

describe('ops: alert rules and dashboard', () => {
  it('the rules file passes promtool (when installed)', () => {
    let promtool = true;
    try {
      execFileSync('promtool', ['--version'], { stdio: 'ignore' });
    } catch {
      promtool = false;
    }
    if (!promtool) return; // the structural checks below still run
    const out = execFileSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' });
    expect(out).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it('has the alerts the operators rely on, each with severity, duration and an explanation', () => {
    for (const r of rules) {
      expect(r.alert).toMatch(/^Carebase[A-Za-z]+$/);
      expect(r.for).toMatch(/^\d+[smh]$/);
      expect(['warning', 'critical']).toContain(r.labels.severity);
      expect(r.annotations.summary.length).toBeGreaterThan(10);
      expect(r.annotations.description.length).toBeGreaterThan(10);
    }
    const uses = (metric: string) => rules.some((r) => r.expr.includes(metric));
    // Database write failures, cache errors, version conflicts, GET errors, outbox lag, latency.
    for (const m of ['db_query_duration_seconds_count', 'cache_errors_total', 'version_conflicts_total', 'outbox_lag_seconds', 'http_request_duration_seconds_bucket']) expect(uses(m), m).toBe(true);
    // Jobs failing for good, and jobs waiting (none running, or too long).
    for (const m of ['jobs_failed_total', 'jobs_waiting', 'job_wait_seconds_bucket']) expect(uses(m), m).toBe(true);
    expect(rules.some((r) => r.expr.includes('method="GET"') && r.expr.includes('5..'))).toBe(true);
  });

  it('the dashboard is a Grafana dashboard whose every panel queries Prometheus', () => {
    expect(dashboard).toMatchObject({ title: 'Carebase', uid: 'carebase-overview' });
    expect(dashboard.panels.length).toBeGreaterThanOrEqual(10);
    for (const p of dashboard.panels) {
      expect(p.type).toBe('timeseries');
      expect(p.targets.length).toBeGreaterThan(0);
      for (const t of p.targets) expect(metricNames(t.expr).length).toBeGreaterThan(0);
    }
  });

  describe.each(storageModes().includes('postgres') ? (['postgres'] as const) : (['pglite'] as const))('every metric named is exported (%s)', (mode) => {
    let srv: TestServer;
    beforeAll(async () => {
      srv = await startServer(mode);
    });
    afterAll(() => srv?.close());

    it('rules and panels name only metrics that /metrics serves', async () => {
      const tenant = await srv.newTenant();
      const api = client(srv.url, await srv.token({ tenant, roles: ['clinician'] }));
      const p = await api('POST', '/v1/patients', { body: patientInput() });
      await api('GET', `/v1/patients/${p.body.id}`);
      const text = await (await fetch(`${srv.url}/metrics`)).text();
      const exported = new Set(text.split('\n').filter((l) => l.startsWith('# TYPE ')).map((l) => l.split(' ')[2]!));
      const named = new Set([...rules.map((r) => r.expr), ...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr))].flatMap(metricNames).map(base));
      for (const m of ['http_request_duration_seconds', 'db_query_duration_seconds', 'cache_errors_total', 'outbox_lag_seconds', 'nodejs_eventloop_lag_p99_seconds']) expect(named).toContain(m);
      // The pool exists only in server mode (PGlite is one connection).
      const missing = [...named].filter((n) => !exported.has(n) && !(mode === 'pglite' && n.startsWith('db_pool_')));
      expect(missing).toEqual([]);
    });
  });
});
