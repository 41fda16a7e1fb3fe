// One connection's ordered view of its tenant's event sequence: replay from a position, then live,
// with no gap and no duplicate at the seam.
//
// Event ids are per tenant and contiguous (1, 2, 3…; src/features/events/events.ts). The stream
// keeps a cursor: the id of the last tenant event it has *processed* (delivered, or skipped
// because the subscriber does not want it). So:
//   - a live event with id <= cursor was already processed: dropped (no duplicate);
//   - id = cursor + 1 is next: processed at once;
//   - id > cursor + 1 means events in between are missing here (published before this stream
//     listened, lost by pub/sub, or still being replayed): it is held, and the missing ids are
//     read from the EventLog, in pages, until the held events connect.
// Replay after a reconnect is the same mechanism with the cursor set to the client's last id.
// Live events arriving during a replay are held (up to maxPending; beyond that they are dropped
// and simply read back from the log, which is always correct since the log holds every id).
//
// Every log read goes through `gate`, which bounds concurrent reads per instance, and reads at
// most pageSize rows: a reconnect storm queues up instead of loading the database.
import type { EventLog, ScopedEvent } from '../../features/events/events.js';

export interface EventStreamOptions {
  tenantId: string;
  log: EventLog;
  pageSize: number;
  /** Live events held while catching up; beyond it they are dropped and read back from the log. */
  maxPending: number;
  gate: Gate;
  /** Whether the subscriber receives this event (its topics, its visibility). */
  wants(e: ScopedEvent): boolean;
  deliver(e: ScopedEvent): void;
  /** The position cannot be resumed from (retention removed events after it, or it is ahead of the log). */
  resync(info: { after: string; head: string }): void;
  /** A log read failed: the transport closes the connection and the client resumes elsewhere or later. */
  fail(err: unknown): void;
}

export type Gate = <T>(fn: () => Promise<T>) => Promise<T>;

/** At most `limit` functions run at once; the others wait in order. */
export function createGate(limit: number): Gate {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (fn) => {
    if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
    try {
      return await fn();
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
}

/** How often a gap the log cannot fill yet is retried before it is reported as resync-required. */
const GAP_RETRIES = 5;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class EventStream {
  private cursor: bigint | undefined;
  private resumeFrom: bigint | undefined;
  private pending: ScopedEvent[] = [];
  private mustReadLog = false;
  private busy = false;
  private done: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly o: EventStreamOptions) {}

  /** The last tenant event id processed (undefined before start). */
  get position(): bigint | undefined {
    return this.cursor;
  }

  get started(): boolean {
    return this.cursor !== undefined || this.resumeFrom !== undefined;
  }

  /** A live event of this stream's tenant, in publication order. */
  offer(e: ScopedEvent): void {
    if (this.closed) return;
    if (this.cursor !== undefined && !this.busy) {
      const id = BigInt(e.id);
      if (id <= this.cursor) return;
      if (id === this.cursor + 1n) return this.process(e);
    }
    // Not started, catching up, or a gap: hold it and let the pump connect it.
    if (this.pending.length >= this.o.maxPending) {
      this.pending = [];
      this.mustReadLog = true;
    } else {
      this.pending.push(e);
    }
    if (this.cursor !== undefined) void this.pump();
  }

  /** Live from the log's current head (unless a resume position was given first). Resolves once caught up. */
  start(): Promise<void> {
    return this.pump();
  }

  /** The log holds events up to `head` that never arrived live: read them (no-op when already there). */
  catchUp(head: bigint): void {
    if (this.closed || this.cursor === undefined || head <= this.cursor) return;
    this.mustReadLog = true;
    void this.pump();
  }

  /** Replays every event after `after`, then continues live. Resolves once caught up. */
  resume(after: bigint): Promise<void> {
    this.resumeFrom = after;
    return this.pump();
  }

  close(): void {
    this.closed = true;
    this.pending = [];
  }

  private pump(): Promise<void> {
    if (!this.busy) {
      this.busy = true;
      this.done = this.run();
    }
    return this.done;
  }

  private process(e: ScopedEvent): void {
    this.cursor = BigInt(e.id);
    if (this.o.wants(e)) this.o.deliver(e);
  }

  /** Processes held events that connect to the cursor; drops those already processed. */
  private drain(): void {
    if (this.pending.length === 0 || this.cursor === undefined) return;
    this.pending.sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
    let i = 0;
    for (; i < this.pending.length && !this.closed; i++) {
      const id = BigInt(this.pending[i]!.id);
      if (id <= this.cursor) continue;
      if (id !== this.cursor + 1n) break;
      this.process(this.pending[i]!);
    }
    this.pending = this.pending.slice(i);
  }

  private async run(): Promise<void> {
    const { log, tenantId, pageSize, gate } = this.o;
    let stalls = 0;
    try {
      for (;;) {
        if (this.closed) break;
        if (this.resumeFrom !== undefined) {
          const after = this.resumeFrom;
          this.resumeFrom = undefined;
          // A position ahead of the log (a client of another database, or a made-up id) would
          // silently skip events once the log reaches it: tell the client instead.
          const head = await gate(() => log.head(tenantId));
          if (this.resumeFrom !== undefined) continue;
          if (after > head) {
            this.o.resync({ after: String(after), head: String(head) });
            this.cursor = head;
          } else {
            this.cursor = after;
            this.mustReadLog = true;
          }
        } else if (this.cursor === undefined) {
          const head = await gate(() => log.head(tenantId));
          if (this.resumeFrom === undefined && this.cursor === undefined) this.cursor = head;
          continue;
        }
        this.drain();
        if (!this.mustReadLog && this.pending.length === 0) break;
        this.mustReadLog = false;
        const from = this.cursor!;
        const page = await gate(() => log.after(tenantId, from, pageSize));
        if (this.closed) break;
        if (this.resumeFrom !== undefined || this.cursor !== from) {
          this.mustReadLog = true; // superseded while reading: start over from the new position
          continue;
        }
        if (page.resync) {
          const head = await gate(() => log.head(tenantId));
          this.o.resync({ after: String(from), head: String(head) });
          if (this.cursor === from) this.cursor = head > from ? head : from;
          continue;
        }
        for (const e of page.events) {
          if (this.closed) break;
          if (BigInt(e.id) > this.cursor!) this.process(e);
        }
        if (page.events.length >= pageSize) {
          this.mustReadLog = true; // more pages
          stalls = 0;
          continue;
        }
        this.drain();
        const first = this.pending[0];
        if (first !== undefined && BigInt(first.id) > this.cursor! + 1n) {
          // Live events are ahead of what the log returns. The dispatcher stores an event before
          // publishing it, so this resolves on a retry; if it does not, the ids are gone for good.
          if (++stalls > GAP_RETRIES) {
            const before = BigInt(first.id) - 1n;
            this.o.resync({ after: String(this.cursor), head: String(before) });
            this.cursor = before;
            stalls = 0;
          } else {
            await sleep(20 * stalls);
          }
        } else {
          stalls = 0;
        }
      }
    } catch (err) {
      this.closed = true;
      this.busy = false;
      this.o.fail(err);
      return;
    }
    this.busy = false;
  }
}
