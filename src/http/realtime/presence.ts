// Room membership shared by every instance (the presence port). Two adapters, chosen once like
// the cache: Redis in server mode (presence-redis.ts), in process in embedded mode (here).
//
// Each member entry expires: the instance holding the connection refreshes its entries every
// heartbeat, and an entry not refreshed within ttlMs (three heartbeats) is swept by whichever
// instance looks next. So a connection that dies without a goodbye, or a whole instance that
// crashes, leaves its rooms within seconds, and the remaining members are told (member-left).
// Sweeping returns what it removed to exactly one caller, so exactly one member-left goes out.

export interface Member {
  /** The connection's id: one user with two tabs is two members. */
  readonly memberId: string;
  readonly sub: string;
  readonly roles: readonly string[];
  readonly joinedAt: string;
}

/** What instances tell each other about rooms (fanned out to every instance). */
export type RoomMessage =
  | { readonly kind: 'joined' | 'left'; readonly tenantId: string; readonly room: string; readonly member: Member }
  | { readonly kind: 'typing'; readonly tenantId: string; readonly room: string; readonly member: Member; readonly typing: boolean };

export interface JoinResult {
  /** false: the room is full (the member was not added). */
  readonly joined: boolean;
  /** Everyone in the room after the join (including the new member). */
  readonly members: readonly Member[];
  /** Entries that had expired and were removed on the way (their member-left is the caller's to send). */
  readonly expired: readonly Member[];
}

export interface PresenceStore {
  join(tenantId: string, room: string, member: Member, maxMembers: number, ttlMs: number): Promise<JoinResult>;
  /** The removed member, or undefined when it was not there (already swept). */
  leave(tenantId: string, room: string, memberId: string): Promise<Member | undefined>;
  /** Extends the entries of these members; returns the ids that were no longer there. */
  refresh(tenantId: string, room: string, memberIds: readonly string[], ttlMs: number): Promise<string[]>;
  /** Removes expired entries and returns them. */
  sweep(tenantId: string, room: string): Promise<Member[]>;
  publish(m: RoomMessage): Promise<void>;
  subscribe(listener: (m: RoomMessage) => void): () => void;
  close(): Promise<void>;
}

export function createMemoryPresence(now = () => Date.now()): PresenceStore {
  const rooms = new Map<string, Map<string, { member: Member; until: number }>>();
  const listeners = new Set<(m: RoomMessage) => void>();
  const keyOf = (tenantId: string, room: string) => `${tenantId}\u0000${room}`;
  const sweepRoom = (key: string): Member[] => {
    const entries = rooms.get(key);
    if (!entries) return [];
    const t = now();
    const gone: Member[] = [];
    for (const [id, e] of entries) {
      if (e.until <= t) {
        entries.delete(id);
        gone.push(e.member);
      }
    }
    if (entries.size === 0) rooms.delete(key);
    return gone;
  };
  return {
    async join(tenantId, room, member, maxMembers, ttlMs) {
      const key = keyOf(tenantId, room);
      const expired = sweepRoom(key);
      let entries = rooms.get(key);
      if (!entries) rooms.set(key, (entries = new Map()));
      if (!entries.has(member.memberId) && entries.size >= maxMembers) {
        return { joined: false, members: [...entries.values()].map((e) => e.member), expired };
      }
      entries.set(member.memberId, { member, until: now() + ttlMs });
      return { joined: true, members: [...entries.values()].map((e) => e.member), expired };
    },
    async leave(tenantId, room, memberId) {
      const key = keyOf(tenantId, room);
      const entries = rooms.get(key);
      const e = entries?.get(memberId);
      entries?.delete(memberId);
      if (entries?.size === 0) rooms.delete(key);
      return e?.member;
    },
    async refresh(tenantId, room, memberIds, ttlMs) {
      const entries = rooms.get(keyOf(tenantId, room));
      const missing: string[] = [];
      for (const id of memberIds) {
        const e = entries?.get(id);
        if (e) e.until = now() + ttlMs;
        else missing.push(id);
      }
      return missing;
    },
    async sweep(tenantId, room) {
      return sweepRoom(keyOf(tenantId, room));
    },
    async publish(m) {
      // Asynchronous like Redis pub/sub, so callers never see their own message re-entrantly.
      queueMicrotask(() => {
        for (const l of listeners) l(m);
      });
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      rooms.clear();
      listeners.clear();
    },
  };
}
