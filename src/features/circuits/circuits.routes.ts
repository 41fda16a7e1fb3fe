// GET /v1/admin/circuits (admin, manager) and PUT /v1/admin/circuits/{name} (admin): the circuit
// breakers of external calls. The handlers only translate.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Deps } from '../../container.js';
import { principalOf } from '../../http/auth.js';
import { CircuitList, CircuitModeChange, CircuitParams, CircuitView } from './circuits.schema.js';
import { listCircuits, setCircuitMode } from './circuits.service.js';

export const circuitsRoutes =
  (deps: Deps): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/v1/admin/circuits',
      {
        schema: {
          tags: ['health'],
          summary: 'The circuit breaker of each external upstream: state, since when, last failure and counts (admin, manager)',
          response: { 200: CircuitList },
        },
      },
      async (req, reply) => reply.header('Cache-Control', 'no-store').send(await listCircuits(principalOf(req), deps.circuits)),
    );
    app.put(
      '/v1/admin/circuits/:name',
      {
        schema: {
          tags: ['health'],
          summary: 'Force a circuit open (every call to that upstream is refused with 503 UPSTREAM_UNAVAILABLE, on every instance) or set it back to auto (admin)',
          params: CircuitParams,
          body: CircuitModeChange,
          response: { 200: CircuitView },
        },
      },
      async (req, reply) => reply.header('Cache-Control', 'no-store').send(await setCircuitMode(principalOf(req), deps.circuits, deps.config.circuits.operatorTenants, req.params.name, req.body.mode)),
    );
  };
