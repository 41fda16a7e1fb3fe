// Watches the service's dependencies (PostgreSQL, Redis) and tells operators when one turns
// unhealthy or recovers: a Slack-compatible message ({"text": …}) POSTed to ALERT_WEBHOOK_URL.
//
// A status changes only after `confirm` consecutive checks agree, so one slow answer does not page
// anyone, and each change is sent once. Messages name the dependency and the error's own message
// (connection errors: codes, hosts, ports), never request data: no PHI can reach them.
import { UpstreamUnavailable } from '../../platform/circuit/index.js';
import { errorLine, type Logger } from '../../platform/log.js';
import { postJson, type AlertPost } from './alert-webhook.js';

export type DependencyStatus = 'ok' | 'down';

export interface DependencyCheck {
  name: string;
  /** The service cannot work without it (PostgreSQL); others degrade it (Redis: reads go to the database). */
  required: boolean;
  /** Resolves when the dependency answers; rejects (or times out) otherwise. */
  run(): Promise<void>;
}

export interface DependencyState {
  name: string;
  required: boolean;
  status: DependencyStatus;
  latencyMs: number | null;
  lastError: string | null;
  /** When the current status began. */
  since: string;
  checkedAt: string | null;
}

export interface HealthMonitor {
  /** Runs every check now and returns the states. */
  check(): Promise<DependencyState[]>;
  states(): DependencyState[];
  /** Alert messages not delivered (webhook failing, or its circuit open): health_alerts_dropped_total. */
  stats(): { alertsDropped: number };
  close(): Promise<void>;
}

export interface HealthMonitorOptions {
  checks: DependencyCheck[];
  log: Logger;
  /** Checks run this often in the background (0: only when asked). */
  intervalMs: number;
  /** Consecutive agreeing checks before a status changes. */
  confirm?: number;
  /** Where to POST status changes; unset: logged only. */
  webhookUrl?: string;
  /** The service's name in messages (host or deployment). */
  service?: string;
  /** Sends a message: container.ts posts through the 'alert-webhook' circuit; default a plain JSON POST with a 5 s timeout. */
  post?: AlertPost;
  now?: () => Date;
}

export function createHealthMonitor(o: HealthMonitorOptions): HealthMonitor {
  const now = o.now ?? (() => new Date());
  const confirm = o.confirm ?? 2;
  const post = o.post ?? ((url, body) => postJson(url, body));
  const service = o.service ?? 'carebase';
  const started = now().toISOString();
  const state = new Map<string, DependencyState & { streak: number; candidate: DependencyStatus }>(
    o.checks.map((c) => [c.name, { name: c.name, required: c.required, status: 'ok', latencyMs: null, lastError: null, since: started, checkedAt: null, streak: 0, candidate: 'ok' }]),
  );
  let running: Promise<DependencyState[]> | undefined;
  let alertsDropped = 0;

  async function alert(s: DependencyState): Promise<void> {
    const text =
      s.status === 'down'
        ? `:red_circle: ${service}: ${s.name} is DOWN${s.required ? '' : ' (degraded: the service goes on without it)'} — ${s.lastError ?? 'no answer'}`
        : `:large_green_circle: ${service}: ${s.name} recovered`;
    o.log[s.status === 'down' ? 'error' : 'info']({ dependency: s.name, status: s.status, error: s.lastError }, 'dependency health changed');
    if (!o.webhookUrl) return;
    try {
      await post(o.webhookUrl, { text });
    } catch (err) {
      alertsDropped++;
      // The status change itself is in the log line above; this says the page did not go out.
      if (err instanceof UpstreamUnavailable && (err.reason === 'open' || err.reason === 'forced-open')) {
        o.log.warn({ circuit: err.circuit, reason: err.reason, dependency: s.name, alertsDropped }, 'health: alert dropped, the alert webhook circuit is open');
      } else {
        o.log.warn({ err: { message: errorLine(err) }, dependency: s.name, alertsDropped }, 'health: the alert webhook could not be reached; alert dropped');
      }
    }
  }

  async function runOne(c: DependencyCheck): Promise<void> {
    const s = state.get(c.name)!;
    const t0 = performance.now();
    let result: DependencyStatus = 'ok';
    try {
      await c.run();
      s.latencyMs = Number((performance.now() - t0).toFixed(2));
    } catch (err) {
      result = 'down';
      s.latencyMs = null;
      s.lastError = errorLine(err);
    }
    s.checkedAt = now().toISOString();
    s.streak = result === s.candidate ? s.streak + 1 : 1;
    s.candidate = result;
    if (result !== s.status && s.streak >= confirm) {
      s.status = result;
      s.since = s.checkedAt;
      await alert(s);
    }
  }

  const view = (): DependencyState[] => [...state.values()].map(({ streak: _s, candidate: _c, ...rest }) => rest);

  function check(): Promise<DependencyState[]> {
    // One round at a time: a request for the health page while the timer's round runs shares it.
    running ??= Promise.all(o.checks.map(runOne))
      .then(view)
      .finally(() => (running = undefined));
    return running;
  }

  const timer = o.intervalMs > 0 ? setInterval(() => void check(), o.intervalMs) : undefined;
  timer?.unref();

  return {
    check,
    states: view,
    stats: () => ({ alertsDropped }),
    async close() {
      if (timer) clearInterval(timer);
      await running;
    },
  };
}
