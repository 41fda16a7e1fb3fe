// Single-use connection tickets (POST /v1/realtime/tickets), for browsers: EventSource and
// WebSocket cannot send an Authorization header, and a bearer token in a URL would end up in
// proxy logs and browser history. A ticket is a random 256-bit string, good for one connection
// within REALTIME_TICKET_TTL_SECONDS; redeeming it is atomic (Redis GETDEL, or a Map delete in
// process), so two connections can never share one. It must work on any instance, so in server
// mode tickets live in Redis; in embedded mode there is one instance and they live in memory.
//
// The store keys a ticket by its SHA-256: whoever reads Redis learns no usable ticket. The grant
// holds the principal the ticket was issued to and when that principal's token expires (the
// connection closes then, as it would with the token itself). No PHI: sub, tenant, roles, and
// a patient's id, which is a pseudonymous identifier.
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ROLES, type Principal, type Role } from '../../auth/principal.js';

export interface TicketGrant {
  readonly principal: Principal;
  /** When the token the ticket was issued for expires (ms since the epoch). */
  readonly expiresAt: number;
}

export interface TicketStore {
  /** A new ticket for the grant, valid for ttlMs. */
  issue(grant: TicketGrant, ttlMs: number): Promise<string>;
  /** The grant, once: a second redeem, or one after expiry, gets undefined. */
  redeem(ticket: string): Promise<TicketGrant | undefined>;
  close(): Promise<void>;
}

/** base64url of 32 random bytes, prefixed so a ticket is never mistaken for a token. */
const TICKET = /^rt_[A-Za-z0-9_-]{43}$/;
const newTicket = () => `rt_${randomBytes(32).toString('base64url')}`;
const digest = (ticket: string) => createHash('sha256').update(ticket).digest('base64url');

interface Serialized {
  sub: string;
  tenantId: string;
  roles: string[];
  patientId?: string;
  expiresAt: number;
}

const serialize = (g: TicketGrant): string =>
  JSON.stringify({ sub: g.principal.sub, tenantId: g.principal.tenantId, roles: [...g.principal.roles], ...(g.principal.patientId ? { patientId: g.principal.patientId } : {}), expiresAt: g.expiresAt } satisfies Serialized);

function deserialize(json: string): TicketGrant | undefined {
  try {
    const s = JSON.parse(json) as Serialized;
    const roles = new Set(s.roles.filter((r): r is Role => (ROLES as readonly string[]).includes(r)));
    return { principal: { sub: s.sub, tenantId: s.tenantId, roles, ...(s.patientId ? { patientId: s.patientId } : {}) }, expiresAt: s.expiresAt };
  } catch {
    return undefined;
  }
}

export function createMemoryTickets(now = () => Date.now()): TicketStore {
  const tickets = new Map<string, { grant: TicketGrant; until: number }>();
  // Expired tickets are dropped as new ones are issued, so the map stays as small as the number
  // of tickets issued within one TTL.
  const purge = () => {
    const t = now();
    for (const [k, v] of tickets) if (v.until <= t) tickets.delete(k);
  };
  return {
    async issue(grant, ttlMs) {
      purge();
      const ticket = newTicket();
      tickets.set(digest(ticket), { grant, until: now() + ttlMs });
      return ticket;
    },
    async redeem(ticket) {
      if (!TICKET.test(ticket)) return undefined;
      const key = digest(ticket);
      const hit = tickets.get(key);
      tickets.delete(key);
      return hit && hit.until > now() ? hit.grant : undefined;
    },
    async close() {
      tickets.clear();
    },
  };
}

export function createRedisTickets(redis: Redis, prefix: string): TicketStore {
  const keyOf = (ticket: string) => `${prefix}ticket:${digest(ticket)}`;
  return {
    async issue(grant, ttlMs) {
      const ticket = newTicket();
      await redis.set(keyOf(ticket), serialize(grant), 'PX', Math.max(1, Math.round(ttlMs)));
      return ticket;
    },
    async redeem(ticket) {
      if (!TICKET.test(ticket)) return undefined;
      const json = await redis.getdel(keyOf(ticket));
      return json === null ? undefined : deserialize(json);
    },
    async close() {},
  };
}
