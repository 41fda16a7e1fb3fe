// The real-time transports (issue 5): POST /v1/realtime/tickets, GET /v1/events (SSE) and
// GET /v1/ws (WebSocket). Their state (tickets, presence, the event hub) is created here from
// deps and closed with the app: on close every connection is told to reconnect elsewhere or
// later (SSE `retry:` + a closing event, WebSocket close 1012), before the server stops.
import websocket from '@fastify/websocket';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Deps } from '../../container.js';
import { sseRoutes } from './sse.routes.js';
import { createRealtimeState } from './state.js';
import { ticketRoutes } from './tickets.routes.js';
import { wsRoutes } from './ws.routes.js';

/** Room for the JSON framing around a request body sent over the socket. */
const WS_FRAMING_BYTES = 64 * 1024;

export const realtimeRoutes =
  (deps: Deps): FastifyPluginAsyncTypebox =>
  async (app) => {
    const rt = createRealtimeState(deps, app);
    await app.register(websocket, {
      options: { maxPayload: deps.config.bodyLimitBytes + WS_FRAMING_BYTES },
      // Instead of the plugin's default (close every socket with no reason), say why and when to come back.
      preClose(done) {
        rt.shutdown();
        this.websocketServer.close(() => done());
      },
    });
    // SSE streams are not WebSockets: they are ended here, or server.close() would wait on them.
    app.addHook('preClose', async () => rt.shutdown());
    app.addHook('onClose', async () => rt.close());
    await app.register(ticketRoutes(rt));
    await app.register(sseRoutes(rt));
    await app.register(wsRoutes(rt));
  };
