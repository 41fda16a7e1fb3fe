// The report behind GET /v1/admin/performance.
import { authorize } from '../../auth/permissions.js';
import type { Principal } from '../../auth/principal.js';
import type { PerformanceReport, PerformanceWindow } from './performance-window.js';

export function performanceReport(principal: Principal, window: PerformanceWindow): PerformanceReport {
  authorize(principal, 'performance:read');
  return window.report();
}
