// GET /v1/ws: the WebSocket transport (@fastify/websocket). The upgrade request goes through the
// whole Fastify stack first, so a refused one (no or bad credentials, a used ticket) gets an
// ordinary HTTP error with the contract's envelope and no socket. A plain GET without upgrade is
// a 400 saying so.
//
// Close codes: 1000 normal; 1008 the token expired; 1011 server error; 1012 the server is
// restarting (reconnect after the delay in the reason, then resume); 1013 slow consumer (the
// client did not read fast enough; reconnect and resume). Each is preceded, when the socket
// still takes data, by a {"type":"closing","reason",…} message.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { WebSocket } from 'ws';
import { AppError, envelope } from '../../errors.js';
import { Connection, type CloseReason, type Sink } from './connection.js';
import { WsQuery } from './schemas.js';
import { realtimeAuthenticator, sessionOf } from './session-auth.js';
import type { RealtimeState } from './state.js';
import { handleMessage } from './ws-messages.js';

const CLOSE: Record<Exclude<CloseReason, 'client' | 'heartbeat-timeout'>, { code: number; text: (retryMs: number) => string }> = {
  shutdown: { code: 1012, text: (ms) => `server restarting; reconnect in ${ms} ms and resume` },
  'slow-consumer': { code: 1013, text: () => 'slow consumer: too much unread data; reconnect and resume' },
  'token-expired': { code: 1008, text: () => 'token expired' },
  error: { code: 1011, text: () => 'server error; reconnect and resume' },
};
/** Messages of one connection waiting to be handled, at most. */
const MAX_QUEUED_MESSAGES = 64;
/** How long a closing handshake may take before the socket is dropped. */
const CLOSE_GRACE_MS = 1000;

function wsSink(ws: WebSocket, requestId: string): Sink {
  let alive = true;
  ws.on('pong', () => (alive = true));
  const send = (data: string) => {
    if (ws.readyState === ws.OPEN) ws.send(data);
  };
  return {
    event: (e) => send(JSON.stringify(e)),
    control: (m) => send(JSON.stringify(m)),
    buffered: () => ws.bufferedAmount,
    heartbeat() {
      if (!alive) {
        ws.terminate();
        return false;
      }
      alive = false;
      if (ws.readyState === ws.OPEN) ws.ping();
      return true;
    },
    destroy: () => ws.terminate(),
    close(reason, retryMs) {
      if (reason === 'heartbeat-timeout' || reason === 'client') return void ws.terminate();
      const c = CLOSE[reason];
      send(
        JSON.stringify({
          type: 'closing',
          reason,
          ...(reason === 'shutdown' ? { retryAfterMs: retryMs } : {}),
          ...(reason === 'token-expired' ? envelope(new AppError('UNAUTHENTICATED', 'The token has expired; reconnect with a new one'), requestId) : {}),
        }),
      );
      ws.close(c.code, c.text(retryMs));
      setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
    },
  };
}

const isUpgrade = (h: Record<string, string | string[] | undefined>) => typeof h.upgrade === 'string' && h.upgrade.toLowerCase() === 'websocket';

export const wsRoutes =
  (rt: RealtimeState): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.route({
      method: 'GET',
      url: '/v1/ws',
      exposeHeadRoute: false,
      config: { authenticate: realtimeAuthenticator(rt.deps, rt.tickets) },
      schema: {
        tags: ['realtime'],
        summary: 'WebSocket (upgrade): subscribe, resume, rooms with presence and typing, and API requests over the socket; JSON text messages',
        querystring: WsQuery,
        response: { 101: Type.Null({ description: 'Switching Protocols: the WebSocket is open' }) },
      },
      // A refused upgrade (e.g. a used ticket, refused by the auth hook before the websocket
      // plugin's own hooks run) has been answered on the raw socket; nothing else will close it.
      onResponse: async (request) => {
        if (!isUpgrade(request.headers)) return;
        const socket = request.raw.socket;
        socket.end();
        setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
      },
      handler: async () => {
        throw new AppError('MALFORMED_REQUEST', 'GET /v1/ws is a WebSocket endpoint: send an Upgrade: websocket request');
      },
      wsHandler: (socket, req) => {
        const { principal, expiresAt } = sessionOf(req);
        const userAgent = req.headers['user-agent'];
        const conn = new Connection(rt, principal, expiresAt, wsSink(socket, req.id), {
          transport: 'ws',
          requestId: req.id,
          ip: req.ip,
          ...(typeof userAgent === 'string' ? { userAgent } : {}),
        });
        // One message at a time, in order; a client that sends faster than they are handled gets
        // a refusal per extra message instead of an ever longer queue.
        let queue: Promise<void> = Promise.resolve();
        let queued = 0;
        socket.on('message', (data, isBinary) => {
          if (conn.isClosed) return;
          if (queued >= MAX_QUEUED_MESSAGES) {
            return conn.send({ type: 'error', ...envelope(new AppError('RATE_LIMITED', `At most ${MAX_QUEUED_MESSAGES} messages may wait for handling; wait for replies`), req.id) });
          }
          const text = isBinary ? undefined : Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data as Buffer[]).toString('utf8');
          queued++;
          queue = queue
            .then(() =>
              text === undefined
                ? conn.send({ type: 'error', ...envelope(new AppError('MALFORMED_REQUEST', 'Send JSON text messages, not binary ones'), req.id) })
                : conn.isClosed
                  ? undefined
                  : handleMessage(rt, conn, text),
            )
            .finally(() => queued--);
        });
        socket.on('close', () => conn.close('client'));
        socket.on('error', () => conn.close('client'));
      },
    });
  };
