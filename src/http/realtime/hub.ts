// The instance's one listener on the EventBus: every dispatched event of every tenant arrives
// here once and is handed to the streams of that tenant's connections on this instance. The
// streams filter by topic and visibility; the hub only routes by tenant, so a busy tenant costs
// other tenants' connections nothing.
//
// Pub/sub may lose a message (a Redis reconnect). A lost event followed by another is a gap the
// streams fill from the log; a lost *last* event would wait for the next one. So every heartbeat
// the hub compares each active tenant's log head with the last id it heard, and when the log has
// been ahead for two beats in a row (not merely a publish in flight), it tells the streams.
import type { EventBus, EventLog, ScopedEvent } from '../../features/events/events.js';
import type { Gate } from './event-stream.js';

export interface EventTarget {
  offer(e: ScopedEvent): void;
  /** The log has events up to `head` that were never heard live: read them. */
  catchUp(head: bigint): void;
}

export interface EventHub {
  add(tenantId: string, target: EventTarget): void;
  remove(tenantId: string, target: EventTarget): void;
  /** One heartbeat of the lost-last-event check (one head read per active tenant). */
  checkHeads(): Promise<void>;
  close(): void;
}

export function createEventHub(bus: EventBus, log: EventLog, gate: Gate): EventHub {
  const byTenant = new Map<string, Set<EventTarget>>();
  const heard = new Map<string, bigint>();
  const suspect = new Map<string, bigint>();
  const unsubscribe = bus.subscribe((e) => {
    const id = BigInt(e.id);
    if (id > (heard.get(e.tenantId) ?? 0n)) heard.set(e.tenantId, id);
    const targets = byTenant.get(e.tenantId);
    if (targets) for (const t of targets) t.offer(e);
  });
  return {
    add(tenantId, target) {
      let set = byTenant.get(tenantId);
      if (!set) byTenant.set(tenantId, (set = new Set()));
      set.add(target);
    },
    remove(tenantId, target) {
      const set = byTenant.get(tenantId);
      set?.delete(target);
      if (set?.size === 0) {
        byTenant.delete(tenantId);
        heard.delete(tenantId);
        suspect.delete(tenantId);
      }
    },
    async checkHeads() {
      for (const tenantId of [...byTenant.keys()]) {
        const head = await gate(() => log.head(tenantId));
        const last = heard.get(tenantId) ?? 0n;
        if (head <= last) {
          suspect.delete(tenantId);
          continue;
        }
        const before = suspect.get(tenantId);
        if (before !== undefined && before > last) {
          for (const t of byTenant.get(tenantId) ?? []) t.catchUp(head);
          heard.set(tenantId, head);
          suspect.delete(tenantId);
        } else {
          suspect.set(tenantId, head);
        }
      }
    },
    close() {
      unsubscribe();
      byTenant.clear();
    },
  };
}
