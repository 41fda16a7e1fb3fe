// GET /v1/events: Server-Sent Events. Topics come as repeated `?topic=`; a reconnecting
// EventSource sends `Last-Event-ID` and gets every event it missed, then live ones.
//
// Everything that can be refused (credentials, topics, permissions) is decided before the
// response starts, so a refusal is an ordinary HTTP error with the contract's envelope and an
// EventSource stops there instead of retrying. Once streaming: `retry:` first (the reconnect
// delay), replayed events, `event: ready` (delivery is live), then live events, heartbeat
// comments, and a final `event: closing` saying why the stream ends.
import type { ServerResponse } from 'node:http';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AppError, envelope, validationFailed } from '../../errors.js';
import { toAppError } from '../error-handler.js';
import type { ResourceEvent } from '../../features/events/events.js';
import { Connection, type CloseReason, type ControlMessage, type Sink } from './connection.js';
import { EventsHeaders, EventsQuery, StreamedEvent } from './schemas.js';
import { realtimeAuthenticator, sessionOf } from './session-auth.js';
import type { RealtimeState } from './state.js';
import { parseTopics } from './topics.js';

/** How long a closing stream waits for a client that does not read before dropping the socket. */
const CLOSE_GRACE_MS = 1000;

/** The SSE sink; what is sent before start() (room traffic while joining) waits for the response to begin. */
function sseSink(res: ServerResponse): Sink & { start(requestId: string, retryMs: number): void } {
  let held: string[] | undefined = [];
  let id = 'n/a';
  const write = (chunk: string) => {
    if (held) held.push(chunk);
    else if (!res.writableEnded && !res.destroyed) res.write(chunk);
  };
  // `error` is EventSource's own connection-failure event: a refusal on the stream is `stream-error`.
  // Messages that name a position (ready, resync-required) carry it as their `id:`, so a
  // reconnecting EventSource resumes from there even before any event reached it.
  const control = (m: ControlMessage) =>
    write(`${typeof m.lastEventId === 'string' ? `id: ${m.lastEventId}\n` : ''}event: ${m.type === 'error' ? 'stream-error' : m.type}\ndata: ${JSON.stringify(m)}\n\n`);
  return {
    start(requestId, retryMs) {
      id = requestId;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no', // proxies (nginx) must not buffer the stream
        'x-request-id': requestId,
      });
      res.socket?.setNoDelay(true);
      const chunks = held ?? [];
      held = undefined;
      res.write(`retry: ${retryMs}\n\n${chunks.join('')}`);
    },
    event: (e: ResourceEvent) => write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`),
    control,
    buffered: () => res.writableLength,
    heartbeat: (position) => {
      // An `id:` without data dispatches nothing but moves the client's Last-Event-ID forward
      // (events filtered out for this client count as processed): a quiet stream still resumes
      // from where it is, not from its last matching event, which retention may have removed.
      write(position === undefined ? ': ping\n\n' : `: ping\nid: ${position}\n\n`);
      return true; // a dead peer shows up as a write error or a growing buffer
    },
    destroy: () => res.destroy(),
    close(reason: CloseReason, retryMs: number) {
      if (held) return; // not started: the route answers with an HTTP error instead
      if (reason === 'shutdown') write(`retry: ${retryMs}\n\n`);
      control({
        type: 'closing',
        reason,
        ...(reason === 'shutdown' ? { retryAfterMs: retryMs } : {}),
        ...(reason === 'token-expired' ? envelope(new AppError('UNAUTHENTICATED', 'The token has expired; reconnect with a new one'), id) : {}),
      });
      res.end();
      // A slow consumer may never drain what is queued: do not wait for it.
      setTimeout(() => res.destroy(), CLOSE_GRACE_MS).unref();
    },
  };
}

export const sseRoutes =
  (rt: RealtimeState): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/v1/events',
      {
        exposeHeadRoute: false,
        config: { authenticate: realtimeAuthenticator(rt.deps, rt.tickets) },
        schema: {
          tags: ['realtime'],
          summary: 'Server-Sent Events for the given topics; Last-Event-ID resumes (replays what was missed, then live)',
          querystring: EventsQuery,
          headers: EventsHeaders,
          // The stream's own content type; its errors (before it starts) are JSON like everywhere.
          response: { 200: { description: 'The event stream', content: { 'text/event-stream': { schema: StreamedEvent } } } },
        },
      },
      async (req, reply) => {
        const { principal, expiresAt } = sessionOf(req);
        const { problems } = parseTopics(req.query.topic, '/query/topic');
        if (problems.length > 0) throw validationFailed(problems, 'Unknown or malformed topic');
        const after = req.headers['last-event-id'];
        const userAgent = req.headers['user-agent'];
        const res = reply.raw;
        const sink = sseSink(res);
        const conn = new Connection(rt, principal, expiresAt, sink, {
          transport: 'sse',
          requestId: req.id,
          ip: req.ip,
          ...(typeof userAgent === 'string' ? { userAgent } : {}),
        });
        // From now on, a client that goes away (even while its topics are being authorized) ends the connection.
        res.on('close', () => conn.close('client'));
        res.on('error', () => conn.close('client'));
        // Until the stream starts, a refusal is a plain HTTP error; nothing has been written yet.
        let subscribed;
        try {
          subscribed = await conn.subscribe(req.query.topic, req.id, '/query/topic', after === undefined ? undefined : BigInt(after), () => {
            reply.hijack();
            sink.start(req.id, rt.retryMs());
          });
        } catch (err) {
          if (!res.headersSent) {
            conn.close('client');
            if (res.destroyed) return reply.hijack(); // nobody to answer
            throw err;
          }
          // Refused after the stream started (cannot happen today; kept for safety): said on the stream, which then ends.
          const appErr = toAppError(err);
          if (appErr.status >= 500) req.log.error({ err, code: appErr.code }, 'realtime: subscription failed');
          conn.send({ type: 'error', ...envelope(appErr, req.id) });
          conn.close('error');
          return;
        }
        conn.send({ type: 'ready', ...subscribed });
      },
    );
  };
