// The real-time layer's per-instance state, created by the plugin from deps (adapters picked
// once, like the cache: Redis when REDIS_URL is set, in process otherwise) and closed with it.
import type { FastifyInstance } from 'fastify';
import type { RealtimeConfig } from '../../config.js';
import type { Deps } from '../../container.js';
import type { EventBus, EventLog } from '../../features/events/events.js';
import type { Connection } from './connection.js';
import { createGate, type Gate } from './event-stream.js';
import { createEventHub, type EventHub } from './hub.js';
import { createMemoryPresence, type PresenceStore } from './presence.js';
import { createRedisPresence } from './presence-redis.js';
import { closeRedis, createRealtimeRedis, keyPrefix } from './redis.js';
import { Rooms } from './rooms.js';
import { createMemoryTickets, createRedisTickets, type TicketStore } from './tickets.js';

/** Log reads (replays, gap fills) one instance runs at once; the rest queue (reconnect storms). */
const CONCURRENT_LOG_READS = 4;
/** Presence entries outlive this many missed heartbeats. */
const PRESENCE_BEATS = 3;

export interface RealtimeState {
  readonly deps: Deps;
  readonly app: FastifyInstance;
  readonly config: RealtimeConfig;
  /** The outbox side: dispatched events, live (bus) and retained (log). */
  readonly events: { readonly bus: EventBus; readonly log: EventLog };
  readonly hub: EventHub;
  readonly tickets: TicketStore;
  readonly presence: PresenceStore;
  readonly rooms: Rooms;
  readonly gate: Gate;
  readonly connections: Set<Connection>;
  /** A reconnect delay for clients: the configured base, jittered up to twice it so a restart does not bring everyone back at once. */
  retryMs(): number;
  /** Closes every connection with a reconnect hint (graceful shutdown). */
  shutdown(): void;
  close(): Promise<void>;
}

const states = new WeakMap<Deps, RealtimeState>();

/** The real-time state of the app built from these deps (operations and tests: connections, rooms). */
export const realtimeStateOf = (deps: Deps): RealtimeState | undefined => states.get(deps);

export function createRealtimeState(deps: Deps, app: FastifyInstance): RealtimeState {
  const config = deps.config.realtime;
  const log = deps.log;
  const redis = deps.config.redisUrl ? { cmd: createRealtimeRedis(deps.config.redisUrl, 'carebase-realtime'), sub: createRealtimeRedis(deps.config.redisUrl, 'carebase-realtime-sub') } : undefined;
  for (const r of redis ? [redis.cmd, redis.sub] : []) r.on('error', (err: unknown) => log.debug({ err }, 'realtime: redis connection error'));
  const prefix = keyPrefix(deps.config.database);
  const tickets = redis ? createRedisTickets(redis.cmd, prefix) : createMemoryTickets();
  const presence = redis ? createRedisPresence(redis.cmd, redis.sub, prefix, log) : createMemoryPresence();
  const rooms = new Rooms(presence, { maxMembers: config.roomMaxMembers, ttlMs: config.heartbeatMs * PRESENCE_BEATS, log, now: deps.now });
  const events = deps.events;
  const gate = createGate(CONCURRENT_LOG_READS);
  const hub = createEventHub(events.bus, events.log, gate);
  const connections = new Set<Connection>();
  for (const transport of ['sse', 'ws'] as const) {
    deps.metrics.gauge(`realtime_connections_${transport}`, `Open real-time connections over ${transport === 'sse' ? 'Server-Sent Events' : 'WebSocket'} on this instance`, () => {
      let n = 0;
      for (const c of connections) if (c.meta.transport === transport) n++;
      return n;
    });
  }
  deps.metrics.gauge('realtime_connections', 'Open real-time connections (SSE and WebSocket) on this instance', () => connections.size);

  let beating = false;
  const timer = setInterval(() => {
    for (const c of [...connections]) c.heartbeat();
    if (beating) return; // a slow Redis or database must not stack passes
    beating = true;
    Promise.all([
      rooms.heartbeat(),
      hub.checkHeads().catch((err: unknown) => log.warn({ err }, 'realtime: event head check failed')),
    ]).finally(() => (beating = false));
  }, config.heartbeatMs);
  timer.unref();

  const state: RealtimeState = {
    deps,
    app,
    config,
    events,
    hub,
    tickets,
    presence,
    rooms,
    gate,
    connections,
    retryMs: () => Math.round(config.reconnectMs * (1 + Math.random())),
    shutdown() {
      for (const c of [...connections]) c.close('shutdown');
    },
    async close() {
      clearInterval(timer);
      state.shutdown();
      hub.close();
      // Leaves announced by the closes above go out before the connections to Redis do.
      await rooms.settle();
      rooms.close();
      await tickets.close();
      await presence.close();
      if (redis) await Promise.all([closeRedis(redis.cmd), closeRedis(redis.sub)]);
    },
  };
  states.set(deps, state);
  return state;
}
