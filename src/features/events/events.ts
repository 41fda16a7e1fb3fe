// The event model shared by the outbox (which writes and dispatches events) and the real-time
// transports (which deliver them). See CONTRACT.md "Real time".
//
// Every committed change of a resource writes one outbox row in the same statement or transaction
// as the change (migration 0008). A dispatcher then gives each tenant's events, in commit order, a
// per-tenant id that increases by exactly one per event (1, 2, 3, …: contiguous, so a gap is
// always detectable), stores them in `events` (kept EVENTS_RETENTION_HOURS, default 24) and
// publishes them on the EventBus, which every API instance subscribes to.

/** What clients receive (SSE `data:` and WebSocket messages carry exactly this JSON). */
export interface ResourceEvent {
  /** Per-tenant, increases by one per event; a decimal string (it may exceed 2^53 one day). */
  id: string;
  /** `<singular resource>.<created|updated|deleted>`, e.g. `patient.updated`, `questionnaire-response.created`. */
  type: string;
  resource: { type: string; id: string; version: number };
  occurredAt: string;
  requestId: string | null;
}

/** An event with the scope the transports filter on (never sent to clients). */
export interface ScopedEvent extends ResourceEvent {
  tenantId: string;
  /** The patient the resource belongs to (the patient itself for `patients`); null for non-PHI resources. */
  patientId: string | null;
  /** For questionnaire responses: their questionnaire (topic `questionnaires/{id}/responses`). */
  questionnaireId: string | null;
  /**
   * The W3C trace context the change was made in, when it was traced: what the event causes
   * (deliveries, jobs) can continue that trace (a TraceCarrier, see platform/tracing).
   */
  traceparent?: string;
}

/** Fan-out of dispatched events to every instance: Redis pub/sub in server mode, in-process otherwise. */
export interface EventBus {
  /** Called for every dispatched event of every tenant, in per-tenant id order as published. Returns unsubscribe. */
  subscribe(listener: (e: ScopedEvent) => void): () => void;
  publish(events: readonly ScopedEvent[]): Promise<void>;
  close(): Promise<void>;
}

/** Reading retained events back (replay after a reconnect). */
export interface EventLog {
  /**
   * Up to `limit` events of the tenant with id > after, in id order. `resync: true` when events
   * after `after` were already removed by retention (the client must reload and start afresh).
   */
  after(tenantId: string, after: bigint, limit: number): Promise<{ events: ScopedEvent[]; resync: boolean }>;
  /** The tenant's last dispatched event id (0n when none). */
  head(tenantId: string): Promise<bigint>;
}
