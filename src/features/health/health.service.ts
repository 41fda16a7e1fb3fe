// The dependency report behind GET /v1/admin/health (and any other transport that wants it).
import { authorize } from '../../auth/permissions.js';
import type { Principal } from '../../auth/principal.js';
import type { DependencyState, HealthMonitor } from './health-monitor.js';

export interface HealthReport {
  /** down: a required dependency is down; degraded: only others are. */
  status: 'ok' | 'degraded' | 'down';
  dependencies: DependencyState[];
}

export async function healthReport(principal: Principal, monitor: HealthMonitor): Promise<HealthReport> {
  authorize(principal, 'health:read');
  const dependencies = await monitor.check();
  const down = dependencies.filter((d) => d.status === 'down');
  return { status: down.some((d) => d.required) ? 'down' : down.length > 0 ? 'degraded' : 'ok', dependencies };
}
