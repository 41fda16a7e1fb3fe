// Schemas of the real-time HTTP routes (validation and OpenAPI) and of WebSocket client messages.
import { Type } from 'typebox';
import { MAX_TOPIC_LENGTH } from './topics.js';
import { MAX_TOPICS } from './connection.js';

const TicketParam = Type.String({ maxLength: 100, description: 'A single-use ticket from POST /v1/realtime/tickets (for clients that cannot send Authorization, e.g. browsers)' });
const TopicString = Type.String({ minLength: 1, maxLength: MAX_TOPIC_LENGTH });
/** An event id: a decimal string (per-tenant ids may one day exceed 2^53). */
export const EventId = Type.String({ pattern: '^[0-9]{1,19}$', description: 'An event id (decimal string)' });

export const TicketRequest = Type.Object({}, { additionalProperties: false, description: 'No body, or an empty object' });
export const Ticket = Type.Object(
  {
    ticket: Type.String({ description: 'Pass as ?ticket= to GET /v1/events or GET /v1/ws, once' }),
    expiresAt: Type.String({ format: 'date-time' }),
  },
  { description: 'A single-use connection ticket' },
);

export const EventsQuery = Type.Object(
  {
    topic: Type.Array(TopicString, { minItems: 1, maxItems: MAX_TOPICS, description: 'Repeatable: patients/{id}, questionnaire-responses/{id}, questionnaires/{id}/responses, rooms/{name}' }),
    ticket: Type.Optional(TicketParam),
  },
  { additionalProperties: false },
);
export const EventsHeaders = Type.Object({
  'last-event-id': Type.Optional(Type.String({ pattern: '^[0-9]{1,19}$', description: 'Resume after this event id (sent by EventSource on reconnect)' })),
});
export const WsQuery = Type.Object({ ticket: Type.Optional(TicketParam) }, { additionalProperties: false });

/** The SSE stream, described for OpenAPI: each `data:` line holds one of these. */
export const StreamedEvent = Type.Object(
  {
    id: Type.String({ description: 'Per-tenant event id (also the SSE id: field)' }),
    type: Type.String({ description: 'e.g. patient.updated (also the SSE event: field)' }),
    resource: Type.Object({ type: Type.String(), id: Type.String(), version: Type.Integer() }),
    occurredAt: Type.String({ format: 'date-time' }),
    requestId: Type.Union([Type.String(), Type.Null()]),
  },
  { description: 'text/event-stream: resource events (id, event, data lines) and control events without id: ready, resync-required, member-joined, member-left, typing, closing' },
);

// WebSocket client messages. `id` (optional on all but request) is echoed in the reply.
const MessageId = Type.String({ minLength: 1, maxLength: 64 });
export const ClientMessages = {
  subscribe: Type.Object({ type: Type.Literal('subscribe'), id: Type.Optional(MessageId), topics: Type.Array(TopicString, { minItems: 1, maxItems: MAX_TOPICS }), after: Type.Optional(EventId) }, { additionalProperties: false }),
  unsubscribe: Type.Object({ type: Type.Literal('unsubscribe'), id: Type.Optional(MessageId), topics: Type.Array(TopicString, { minItems: 1, maxItems: MAX_TOPICS }) }, { additionalProperties: false }),
  resume: Type.Object({ type: Type.Literal('resume'), id: Type.Optional(MessageId), after: EventId }, { additionalProperties: false }),
  typing: Type.Object({ type: Type.Literal('typing'), id: Type.Optional(MessageId), room: Type.String({ minLength: 1, maxLength: MAX_TOPIC_LENGTH }), typing: Type.Boolean() }, { additionalProperties: false }),
  ping: Type.Object({ type: Type.Literal('ping'), id: Type.Optional(MessageId) }, { additionalProperties: false }),
  request: Type.Object(
    {
      type: Type.Literal('request'),
      id: MessageId,
      method: Type.Union(['GET', 'POST', 'PATCH', 'PUT', 'DELETE'].map((m) => Type.Literal(m))),
      path: Type.String({ minLength: 4, maxLength: 2048 }),
      headers: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 1024 }))),
      body: Type.Optional(Type.Unknown()),
    },
    { additionalProperties: false },
  ),
} as const;
export type ClientMessageType = keyof typeof ClientMessages;
