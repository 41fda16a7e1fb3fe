// Rooms on this instance: which local connections are in which room, and the traffic between
// them and the shared presence store. A room is joined by subscribing to `rooms/<name>` (who may
// join which room: topic-access.ts), left by unsubscribing or disconnecting.
//
// Every change is published to all instances (presence port); each instance forwards a message
// to its local members of that room, except to the member it is about. A member joining while
// messages are in flight holds them until its own join has returned the member list, and every
// member keeps the set of members it has been told about: so a join it already saw in the list
// is not announced twice, and a leave of someone it never saw is not announced at all.
import { AppError } from '../../errors.js';
import type { Principal } from '../../auth/principal.js';
import type { Logger } from '../../platform/log.js';
import type { Member, PresenceStore, RoomMessage } from './presence.js';

/** What a room needs of a connection. */
export interface RoomClient {
  readonly id: string;
  readonly principal: Principal;
  /** A control message for the client (member-joined, member-left, typing, error). */
  send(message: Record<string, unknown>): void;
}

interface Handle {
  readonly client: RoomClient;
  readonly member: Member;
  joined: boolean;
  held: RoomMessage[];
  known: Set<string>;
}

export interface RoomsOptions {
  maxMembers: number;
  /** Presence entries live this long without a refresh. */
  ttlMs: number;
  log: Logger;
  now: () => Date;
}

const unavailable = () => new AppError('SERVICE_UNAVAILABLE', 'Room presence is unavailable; retry shortly', undefined, { 'Retry-After': '2' });

export class Rooms {
  private readonly local = new Map<string, Map<string, Handle>>();
  private readonly unsubscribe: () => void;
  /** Leaves and publications under way, so closing can let them finish before Redis goes. */
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(
    private readonly store: PresenceStore,
    private readonly o: RoomsOptions,
  ) {
    this.unsubscribe = store.subscribe((m) => this.onMessage(m));
  }

  /** Joins the room; resolves with its members (the joiner included). Throws CONFLICT when full. */
  async join(client: RoomClient, room: string): Promise<readonly Member[]> {
    const tenantId = client.principal.tenantId;
    const key = roomKey(tenantId, room);
    // Connections subscribe to a topic once (connection.ts), so a second join is a bug, not a client error.
    if (this.local.get(key)?.has(client.id)) throw new AppError('INTERNAL');
    const member: Member = { memberId: client.id, sub: client.principal.sub, roles: [...client.principal.roles], joinedAt: this.o.now().toISOString() };
    const handle: Handle = { client, member, joined: false, held: [], known: new Set() };
    let handles = this.local.get(key);
    if (!handles) this.local.set(key, (handles = new Map()));
    handles.set(client.id, handle); // from here, messages about the room are held for it
    let result;
    try {
      result = await this.store.join(tenantId, room, member, this.o.maxMembers, this.o.ttlMs);
    } catch (err) {
      this.drop(key, client.id);
      this.o.log.warn({ err }, 'realtime: room join failed');
      throw unavailable();
    }
    for (const gone of result.expired) this.publish({ kind: 'left', tenantId, room, member: gone });
    if (!result.joined) {
      this.drop(key, client.id);
      throw new AppError('CONFLICT', `The room is full (at most ${this.o.maxMembers} members)`, [{ path: '/topics', message: `rooms/${room} is full` }]);
    }
    handle.known = new Set(result.members.map((m) => m.memberId));
    handle.joined = true;
    this.publish({ kind: 'joined', tenantId, room, member });
    for (const m of handle.held.splice(0)) this.apply(handle, m);
    return result.members;
  }

  leave(client: RoomClient, room: string): Promise<void> {
    return this.track(this.leaveNow(client, room));
  }

  /** Resolves when leaves and publications under way have finished. */
  async settle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    return p.finally(() => this.inflight.delete(p));
  }

  private async leaveNow(client: RoomClient, room: string): Promise<void> {
    const tenantId = client.principal.tenantId;
    const handle = this.drop(roomKey(tenantId, room), client.id);
    if (!handle) return;
    try {
      const removed = await this.store.leave(tenantId, room, client.id);
      if (removed) this.publish({ kind: 'left', tenantId, room, member: removed });
    } catch (err) {
      // The entry expires on its own after ttlMs; another instance then announces the leave.
      this.o.log.warn({ err }, 'realtime: room leave failed; the presence entry will expire');
    }
  }

  /** Tells the room's other members that this member is (or stopped) typing. */
  typing(client: RoomClient, room: string, typing: boolean): void {
    const handle = this.local.get(roomKey(client.principal.tenantId, room))?.get(client.id);
    if (!handle?.joined) throw new AppError('VALIDATION_FAILED', undefined, [{ path: '/room', message: `join the room first (subscribe to rooms/<name>)` }]);
    this.publish({ kind: 'typing', tenantId: client.principal.tenantId, room, member: handle.member, typing });
  }

  /**
   * Every heartbeat: extends the entries of local members and sweeps each room with local
   * members for entries that expired (connections of a crashed instance), announcing them gone.
   * A local member whose entry was swept anyway (this process stalled past the TTL) joins again.
   */
  async heartbeat(): Promise<void> {
    for (const [key, handles] of this.local) {
      const [tenantId, room] = splitKey(key);
      const joined = [...handles.values()].filter((h) => h.joined);
      try {
        const missing = await this.store.refresh(tenantId, room, joined.map((h) => h.member.memberId), this.o.ttlMs);
        for (const gone of await this.store.sweep(tenantId, room)) this.publish({ kind: 'left', tenantId, room, member: gone });
        for (const id of missing) {
          const h = handles.get(id);
          if (!h) continue;
          const r = await this.store.join(tenantId, room, h.member, this.o.maxMembers, this.o.ttlMs);
          if (r.joined) this.publish({ kind: 'joined', tenantId, room, member: h.member });
          else {
            this.drop(key, id);
            h.client.send({ type: 'room-closed', room, reason: 'presence lost and the room is now full' });
          }
        }
      } catch (err) {
        this.o.log.warn({ err }, 'realtime: presence refresh failed');
      }
    }
  }

  close(): void {
    this.unsubscribe();
    this.local.clear();
  }

  private drop(key: string, memberId: string): Handle | undefined {
    const handles = this.local.get(key);
    const h = handles?.get(memberId);
    handles?.delete(memberId);
    if (handles?.size === 0) this.local.delete(key);
    return h;
  }

  private publish(m: RoomMessage): void {
    void this.track(this.store.publish(m).catch((err: unknown) => this.o.log.warn({ err }, 'realtime: room message not published')));
  }

  private onMessage(m: RoomMessage): void {
    const handles = this.local.get(roomKey(m.tenantId, m.room));
    if (!handles) return;
    for (const h of handles.values()) {
      if (h.joined) this.apply(h, m);
      else h.held.push(m);
    }
  }

  private apply(h: Handle, m: RoomMessage): void {
    const id = m.member.memberId;
    if (id === h.member.memberId) return;
    if (m.kind === 'joined') {
      if (h.known.has(id)) return;
      h.known.add(id);
      h.client.send({ type: 'member-joined', room: m.room, member: m.member });
    } else if (m.kind === 'left') {
      if (!h.known.delete(id)) return;
      h.client.send({ type: 'member-left', room: m.room, member: m.member });
    } else if (m.kind === 'typing' && h.known.has(id)) {
      h.client.send({ type: 'typing', room: m.room, member: m.member, typing: m.typing });
    }
  }
}

const roomKey = (tenantId: string, room: string) => `${tenantId}\u0000${room}`;
const splitKey = (key: string): [string, string] => {
  const i = key.indexOf('\u0000');
  return [key.slice(0, i), key.slice(i + 1)];
};
