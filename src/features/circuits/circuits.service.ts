// Circuit breakers for operators: the state of each, and forcing one open (or back to auto).
import { authorize } from '../../auth/permissions.js';
import type { Principal } from '../../auth/principal.js';
import { AppError, notFound } from '../../errors.js';
import { CircuitStoreUnavailable, type CircuitMode, type CircuitRegistry, type CircuitView } from '../../platform/circuit/index.js';

export interface CircuitReport {
  shared: boolean;
  circuits: CircuitView[];
}

export async function listCircuits(principal: Principal, circuits: CircuitRegistry): Promise<CircuitReport> {
  authorize(principal, 'circuits:read');
  return { shared: circuits.shared, circuits: await circuits.views() };
}

/**
 * Circuits belong to the deployment, not a tenant: forcing one open stops the upstream for every
 * tenant, so only admins of the operator tenants (CIRCUIT_OPERATOR_TENANTS) may.
 */
export async function setCircuitMode(principal: Principal, circuits: CircuitRegistry, operatorTenants: readonly string[], name: string, mode: CircuitMode): Promise<CircuitView> {
  authorize(principal, 'circuits:write');
  if (!operatorTenants.includes(principal.tenantId)) throw new AppError('FORBIDDEN', 'Circuits are forced by the admins of an operator tenant (CIRCUIT_OPERATOR_TENANTS)');
  if (!circuits.get(name)) throw notFound('Circuit');
  try {
    return await circuits.setMode(name, mode, { sub: principal.sub, tenant: principal.tenantId });
  } catch (err) {
    // Applying it here alone would mislead: the other instances would go on calling the upstream.
    if (err instanceof CircuitStoreUnavailable) {
      throw new AppError('SERVICE_UNAVAILABLE', 'The circuit state cannot be shared right now (Redis unreachable); nothing was changed', undefined, { 'Retry-After': '5' });
    }
    throw err;
  }
}
