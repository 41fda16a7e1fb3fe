// Fan-out of dispatched events to every API instance: Redis pub/sub in server mode (each instance
// subscribes; the dispatching instance publishes once), an in-process set of listeners otherwise.
//
// Pub/sub is not durable, and need not be: events are stored before they are published, ids are
// contiguous per tenant, and the transports fetch any gap from the event log. A publish that
// fails (Redis down) is logged and the events are delivered to this instance's own listeners, so
// one instance keeps working; the others catch up from the log.
import { scopedKey } from '../../platform/deployment-scope.js';
import { Redis } from 'ioredis';
import type { Logger } from '../../platform/log.js';
import type { EventBus, ScopedEvent } from './events.js';

type Listener = (e: ScopedEvent) => void;

function listenerSet(log: Logger) {
  const listeners = new Set<Listener>();
  return {
    add(l: Listener) {
      listeners.add(l);
      return () => void listeners.delete(l);
    },
    deliver(events: readonly ScopedEvent[]) {
      for (const e of events) {
        for (const l of listeners) {
          try {
            l(e);
          } catch (err) {
            log.error({ err, event: e.id, tenant: e.tenantId }, 'events: a listener failed');
          }
        }
      }
    },
  };
}

export function createMemoryEventBus(log: Logger): EventBus {
  const local = listenerSet(log);
  return {
    subscribe: local.add,
    async publish(events) {
      local.deliver(events);
    },
    async close() {},
  };
}

export interface RedisEventBusOptions {
  url: string;
  log: Logger;
  /**
   * Which database the events belong to: instances of one deployment share it, another
   * deployment (or a test database) on the same Redis does not hear them.
   */
  scope: string;
}

export function createRedisEventBus(o: RedisEventBusOptions): EventBus {
  const channel = scopedKey('carebase:events', o.scope);
  const local = listenerSet(o.log);
  const options = { lazyConnect: false, enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: (n: number) => Math.min(n * 100, 2000) };
  const pub = new Redis(o.url, options);
  // The subscriber keeps its offline queue so the SUBSCRIBE issued now is sent once connected;
  // ioredis re-subscribes by itself after a reconnect.
  const sub = new Redis(o.url, { ...options, enableOfflineQueue: true, maxRetriesPerRequest: null });
  for (const [name, c] of [['publisher', pub], ['subscriber', sub]] as const) {
    c.on('error', (err: Error) => o.log.warn({ err: { message: err.message }, client: name }, 'events: redis connection error'));
  }
  let closing = false;
  sub.subscribe(channel).catch((err: unknown) => {
    if (!closing) o.log.error({ err }, 'events: subscribing to redis failed');
  });
  sub.on('message', (ch: string, message: string) => {
    if (ch !== channel) return;
    try {
      local.deliver(JSON.parse(message) as ScopedEvent[]);
    } catch (err) {
      o.log.error({ err }, 'events: unreadable message on the events channel');
    }
  });
  return {
    subscribe: local.add,
    async publish(events) {
      if (events.length === 0) return;
      try {
        await pub.publish(channel, JSON.stringify(events));
      } catch (err) {
        o.log.warn({ err, events: events.length }, 'events: publishing to redis failed; delivered to this instance only');
        local.deliver(events);
      }
    },
    async close() {
      // disconnect, not quit: quit waits for a connection that may never come (Redis down), and
      // nothing is pending here (every publish was awaited by its caller).
      closing = true;
      pub.disconnect();
      sub.disconnect();
    },
  };
}
