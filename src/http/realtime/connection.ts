// One real-time connection, whatever its transport: who it is, what it subscribed to, its event
// stream and its rooms. SSE (sse.routes.ts) and WebSocket (ws.routes.ts) only translate between
// this and their wire format (a Sink), so both carry the same events under the same rules.
import { randomUUID } from 'node:crypto';
import type { Principal } from '../../auth/principal.js';
import type { Ctx } from '../../context.js';
import { AppError, validationFailed } from '../../errors.js';
import type { ResourceEvent, ScopedEvent } from '../../features/events/events.js';
import type { Member } from './presence.js';
import type { RealtimeState } from './state.js';
import { EventStream } from './event-stream.js';
import { authorizeTopic, visibleTo } from './topic-access.js';
import { parseRoom, parseTopics, topicMatches, type Topic } from './topics.js';

/** Why a connection ends; each transport maps it to its own signal (close code, final event). */
export type CloseReason = 'client' | 'shutdown' | 'slow-consumer' | 'token-expired' | 'heartbeat-timeout' | 'error';

/** A control message: `type` plus fields (never a resource event, whose type has a dot). */
export type ControlMessage = { type: string } & Record<string, unknown>;

/** The transport's side of a connection. */
export interface Sink {
  event(e: ResourceEvent): void;
  control(m: ControlMessage): void;
  /** Bytes queued for this client and not yet handed to the network. */
  buffered(): number;
  /**
   * Keeps the connection alive (and, for WebSocket, detects a dead peer: returns false then).
   * `position` is the last tenant event id processed: SSE records it as the stream's last event
   * id, so a reconnect resumes from there even when no event of its topics came by.
   */
  heartbeat(position: string | undefined): boolean;
  /** Says why (and, on shutdown, when to come back), then closes. */
  close(reason: CloseReason, retryMs: number): void;
  /** Drops the network connection without a word (as a network failure would). */
  destroy(): void;
}

/** Topics one connection may hold at once. */
export const MAX_TOPICS = 100;

export interface ConnectionMeta {
  transport: 'sse' | 'ws';
  requestId: string;
  ip?: string;
  userAgent?: string;
}

/** The event as clients receive it: the contract's JSON, without the scope fields. */
export const clientEvent = (e: ScopedEvent): ResourceEvent => ({ id: e.id, type: e.type, resource: e.resource, occurredAt: e.occurredAt, requestId: e.requestId });

export class Connection {
  readonly id = randomUUID();
  private readonly topics = new Map<string, Topic>();
  private stream: EventStream | undefined;
  /** A WebSocket resume received before any resource topic: where the first subscription starts. */
  private resumeAt: bigint | undefined;
  private readonly openedAt = Date.now();
  private expiry: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly rt: RealtimeState,
    readonly principal: Principal,
    expiresAt: number,
    private readonly sink: Sink,
    readonly meta: ConnectionMeta,
  ) {
    rt.connections.add(this);
    // The connection lives as long as its credentials: a token (or the token a ticket was issued
    // for) that expires closes it. setTimeout holds at most ~24.8 days; tokens live far less.
    this.expiry = setTimeout(() => this.close('token-expired'), Math.min(Math.max(0, expiresAt - Date.now()), 2 ** 31 - 1));
    this.expiry.unref();
  }

  /** The last tenant event id processed (what a resume should start after), once delivery started. */
  get lastEventId(): string | null {
    return this.stream?.position?.toString() ?? null;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The service-layer context for work done on behalf of this connection. */
  ctx(requestId: string): Ctx {
    const d = this.rt.deps;
    return {
      principal: this.principal,
      tenantId: this.principal.tenantId,
      requestId,
      now: d.now,
      db: d.db,
      cache: d.resources,
      log: d.log.child({ requestId }),
      audit: d.audit,
      keys: d.keys,
      client: { ...(this.meta.ip ? { ip: this.meta.ip } : {}), ...(this.meta.userAgent ? { userAgent: this.meta.userAgent.slice(0, 256) } : {}) },
    };
  }

  /**
   * Authorizes every new topic through the service layer, then attaches them all (or none) and
   * resolves once delivery is live (after replaying from `after`, when given). Rooms are joined
   * here: the result lists their members. `beforeDelivery` runs once everything is authorized
   * and joined, before any event is sent (SSE starts its response there; until then its sink
   * holds what rooms send).
   */
  async subscribe(raw: readonly string[], requestId: string, pathPrefix: string, after?: bigint, beforeDelivery?: () => void) {
    const { topics, problems } = parseTopics(raw, pathPrefix);
    if (problems.length > 0) throw validationFailed(problems, 'Unknown or malformed topic');
    const fresh = topics.filter((t) => !this.topics.has(t.key));
    if (this.topics.size + fresh.length > MAX_TOPICS) throw validationFailed([{ path: pathPrefix, message: `a connection holds at most ${MAX_TOPICS} topics` }]);
    const ctx = this.ctx(requestId);
    for (const t of fresh) await authorizeTopic(ctx, t);
    const resourceTopics = fresh.filter((t) => t.kind !== 'room');
    const rooms: Record<string, readonly Member[]> = {};
    const joined: Topic[] = [];
    const leaveJoined = async () => {
      for (const t of joined) if (t.kind === 'room') await this.rt.rooms.leave(this, t.room);
    };
    try {
      for (const t of fresh) {
        if (t.kind !== 'room' || this.closed) continue;
        rooms[t.room] = await this.rt.rooms.join(this, t.room);
        joined.push(t);
      }
    } catch (err) {
      await leaveJoined();
      throw err;
    }
    // The client went away while this was being authorized: close() could not see these yet.
    if (this.closed) {
      await leaveJoined();
      throw new AppError('SERVICE_UNAVAILABLE', 'The connection is closing');
    }
    for (const t of fresh) this.topics.set(t.key, t);
    beforeDelivery?.();
    if (resourceTopics.length > 0 || after !== undefined || this.stream) {
      const stream = this.ensureStream();
      const from = after ?? this.resumeAt;
      this.resumeAt = undefined;
      if (from !== undefined) await stream.resume(from);
      else await stream.start();
    }
    return { topics: [...this.topics.keys()], lastEventId: this.stream?.position?.toString() ?? null, rooms };
  }

  async unsubscribe(raw: readonly string[], pathPrefix: string): Promise<string[]> {
    const { topics, problems } = parseTopics(raw, pathPrefix);
    if (problems.length > 0) throw validationFailed(problems, 'Unknown or malformed topic');
    for (const t of topics) {
      if (!this.topics.delete(t.key)) continue;
      if (t.kind === 'room') await this.rt.rooms.leave(this, t.room);
    }
    return [...this.topics.keys()];
  }

  /** Replays what followed `after` for the current topics, or remembers it for the first subscription. */
  async resume(after: bigint): Promise<string | null> {
    if (!this.stream) {
      this.resumeAt = after;
      return null;
    }
    await this.stream.resume(after);
    return this.stream.position?.toString() ?? null;
  }

  typing(room: string, typing: boolean): void {
    const t = parseRoom(room.startsWith('rooms/') ? room.slice(6) : room);
    if ('problem' in t || t.kind !== 'room') throw validationFailed([{ path: '/room', message: 'problem' in t ? t.problem : 'not a room' }]);
    this.rt.rooms.typing(this, t.room, typing);
  }

  /** A control message (room traffic, replies); closes the connection if the client does not keep up. */
  send(m: ControlMessage): void {
    if (this.closed) return;
    this.sink.control(m);
    this.checkBuffer();
  }

  /** Called every heartbeat by the instance's timer. */
  heartbeat(): void {
    if (this.closed) return;
    if (!this.sink.heartbeat(this.stream?.position?.toString())) return this.close('heartbeat-timeout');
    this.checkBuffer();
  }

  /** Drops the connection as a network failure would: no closing message (the client resumes). */
  drop(): void {
    this.sink.destroy();
    this.close('client');
  }

  close(reason: CloseReason): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.expiry);
    this.stream?.close();
    if (this.stream) this.rt.hub.remove(this.principal.tenantId, this.stream);
    this.rt.connections.delete(this);
    for (const t of this.topics.values()) if (t.kind === 'room') void this.rt.rooms.leave(this, t.room);
    this.topics.clear();
    if (reason !== 'client') this.sink.close(reason, this.rt.retryMs());
    this.rt.deps.log.info(
      { transport: this.meta.transport, requestId: this.meta.requestId, tenant: this.principal.tenantId, user: this.principal.sub, durationMs: Date.now() - this.openedAt, reason },
      'realtime connection closed',
    );
  }

  private checkBuffer(): void {
    if (!this.closed && this.sink.buffered() > this.rt.config.maxBufferBytes) this.close('slow-consumer');
  }

  private wants(e: ScopedEvent): boolean {
    if (!visibleTo(this.principal, e)) return false;
    for (const t of this.topics.values()) if (topicMatches(t, e)) return true;
    return false;
  }

  private ensureStream(): EventStream {
    if (this.stream) return this.stream;
    const events = this.rt.events;
    const stream = new EventStream({
      tenantId: this.principal.tenantId,
      log: events.log,
      pageSize: this.rt.config.replayPageSize,
      maxPending: this.rt.config.replayPageSize * 4,
      gate: this.rt.gate,
      wants: (e) => this.wants(e),
      deliver: (e) => {
        if (this.closed) return;
        this.sink.event(clientEvent(e));
        this.checkBuffer();
      },
      resync: (info) =>
        this.send({ type: 'resync-required', ...info, lastEventId: info.head, message: 'Events after this position are no longer available; reload the resources, then continue from lastEventId' }),
      fail: (err) => {
        this.rt.deps.log.warn({ err, requestId: this.meta.requestId }, 'realtime: event replay failed; closing the connection');
        this.close('error');
      },
    });
    this.stream = stream;
    this.rt.hub.add(this.principal.tenantId, stream);
    return stream;
  }
}
