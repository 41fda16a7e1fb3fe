// Schemas of /v1/admin/circuits: validation and OpenAPI.
import { Type, type Static } from 'typebox';

const Time = Type.String({ format: 'date-time' });

export const CircuitView = Type.Object(
  {
    name: Type.String({ description: "The upstream it guards, e.g. 'alert-webhook'" }),
    state: Type.Union([Type.Literal('closed'), Type.Literal('open'), Type.Literal('half-open'), Type.Literal('forced-open')], {
      description: 'closed: calls go through; open: refused at once (503 UPSTREAM_UNAVAILABLE) after repeated failures, here or on another instance; half-open: the next call is a trial; forced-open: refused until an admin sets the mode back to auto',
    }),
    mode: Type.Union([Type.Literal('auto'), Type.Literal('forced-open')]),
    since: { ...Time, description: 'When the current state began' },
    openUntil: Type.Union([Time, Type.Null()], { description: 'Open: when a trial call will be let through' }),
    lastFailure: Type.Union([Type.String(), Type.Null()], { description: 'The last failure: an HTTP status, a connection error code or a timeout (never the upstream\'s own words)' }),
    lastFailureAt: Type.Union([Time, Type.Null()]),
    failures: Type.Object(
      { consecutive: Type.Integer({ minimum: 0 }), total: Type.Integer({ minimum: 0 }) },
      { description: "This instance's failed attempts: in a row now, and since it started" },
    ),
    rejections: Type.Integer({ minimum: 0, description: 'Calls this instance refused because the circuit was open or forced open' }),
    forcedBy: Type.Union([Type.String(), Type.Null()], { description: 'The sub of the admin who forced it open' }),
  },
  { additionalProperties: false },
);
export type CircuitView = Static<typeof CircuitView>;

export const CircuitList = Type.Object(
  {
    shared: Type.Boolean({ description: 'State shared by every instance through Redis (server mode); otherwise this process only' }),
    circuits: Type.Array(CircuitView),
  },
  { additionalProperties: false },
);

export const CircuitParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 100, description: 'The circuit name' }) }, { additionalProperties: false });

export const CircuitModeChange = Type.Object(
  {
    mode: Type.Enum(['forced-open', 'auto'], {
      description: 'forced-open: refuse every call to the upstream, on every instance, until set back to auto; auto: the breaker decides',
    }),
  },
  { additionalProperties: false },
);
export type CircuitModeChange = Static<typeof CircuitModeChange>;
