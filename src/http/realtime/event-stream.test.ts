// The seam between replay and live delivery, against an in-memory EventLog: every interleaving
// of live events (early, late, duplicated, lost) and log pages ends in the exact sequence, with
// bounded pages and bounded held events.
import { describe, expect, it } from 'vitest';
import type { EventBus, EventLog, ScopedEvent } from '../../features/events/events.js';
import { createGate, EventStream, type EventStreamOptions } from './event-stream.js';
import { createEventHub } from './hub.js';

const T = 't1';
const ev = (id: number, resourceId = 'a'): ScopedEvent => ({
  id: String(id),
  type: 'patient.updated',
  resource: { type: 'patients', id: resourceId, version: id },
  occurredAt: new Date(0).toISOString(),
  requestId: null,
  tenantId: T,
  patientId: resourceId,
  questionnaireId: null,
});

/** The event with this id, as the log holds it. */
const live = (id: number) => ev(id, id % 3 === 0 ? 'b' : 'a');

/** A log of events 1..n; events up to `purged` are gone; records the size of every page read. */
function fakeLog(n: number, purged = 0) {
  const reads: { after: bigint; limit: number; returned: number }[] = [];
  const state = { n, purged, failNext: false };
  const log: EventLog = {
    async after(_tenant, after, limit) {
      await Promise.resolve();
      if (state.failNext) {
        state.failNext = false;
        throw new Error('db down');
      }
      if (after < BigInt(state.purged) || after > BigInt(state.n)) return { events: [], resync: true };
      const events: ScopedEvent[] = [];
      for (let i = Number(after) + 1; i <= state.n && events.length < limit; i++) events.push(live(i));
      reads.push({ after, limit, returned: events.length });
      return { events, resync: false };
    },
    async head() {
      return BigInt(state.n);
    },
  };
  return { log, reads, state };
}

function stream(log: EventLog, over: Partial<EventStreamOptions> = {}) {
  const delivered: string[] = [];
  const resyncs: { after: string; head: string }[] = [];
  const failures: unknown[] = [];
  const s = new EventStream({
    tenantId: T,
    log,
    pageSize: 4,
    maxPending: 5,
    gate: createGate(2),
    wants: (e) => e.resource.id === 'a',
    deliver: (e) => delivered.push(e.id),
    resync: (r) => resyncs.push(r),
    fail: (err) => failures.push(err),
    ...over,
  });
  return { s, delivered, resyncs, failures };
}

const ofA = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i).filter((i) => i % 3 !== 0).map(String);

describe('EventStream', () => {
  it('replays after a position in bounded pages, filtered, then delivers live events with no gap or duplicate', async () => {
    const { log, reads, state } = fakeLog(20);
    const { s, delivered } = stream(log);
    // Live events arrive while the replay is under way (some it will also read from the log).
    const replay = s.resume(5n);
    s.offer(live(18));
    s.offer(live(21));
    state.n = 22;
    s.offer(live(22));
    await replay;
    expect(delivered).toEqual(ofA(6, 22));
    expect(reads.every((r) => r.limit === 4 && r.returned <= 4)).toBe(true);
    // Live, in order; a duplicate and an old event are dropped.
    state.n = 23;
    s.offer(live(23));
    s.offer(live(23));
    s.offer(live(10));
    expect(delivered.slice(-1)).toEqual(['23']);
    expect(delivered).toEqual(ofA(6, 23));
    expect(new Set(delivered).size).toBe(delivered.length);
    expect(s.position).toBe(23n);
  });

  it('a live event beyond the next id is a gap: the missing ids are read from the log first', async () => {
    const { log, state } = fakeLog(10);
    const { s, delivered } = stream(log);
    await s.start();
    expect(s.position).toBe(10n);
    state.n = 14; // 11..13 were published before this instance heard them (or pub/sub lost them)
    s.offer(live(14));
    await s.start(); // waits for the catch-up under way
    expect(delivered).toEqual(ofA(11, 14));
  });

  it('held live events are bounded: beyond maxPending they are dropped and read back from the log', async () => {
    const { log, state, reads } = fakeLog(0);
    const { s, delivered } = stream(log, { maxPending: 3 });
    const started = s.resume(0n);
    state.n = 40;
    for (let i = 1; i <= 40; i++) s.offer(live(i));
    await started;
    await s.start();
    expect(delivered).toEqual(ofA(1, 40));
    expect(reads.length).toBeGreaterThanOrEqual(10); // 40 events in pages of 4
  });

  it('a position removed by retention, or ahead of the log, is resync-required; delivery then continues from the head', async () => {
    const { log, state } = fakeLog(30, 12);
    const { s, delivered, resyncs } = stream(log);
    await s.resume(3n);
    expect(resyncs).toEqual([{ after: '3', head: '30' }]);
    expect(delivered).toEqual([]);
    state.n = 31;
    s.offer(live(31));
    expect(delivered).toEqual(['31']);
    const ahead = stream(log);
    await ahead.s.resume(1000n);
    expect(ahead.resyncs).toEqual([{ after: '1000', head: '31' }]);
  });

  it('a failing log read fails the stream (the transport closes; the client resumes)', async () => {
    const { log, state } = fakeLog(10);
    const { s, failures, delivered } = stream(log);
    state.failNext = true;
    await s.resume(2n);
    expect(failures).toHaveLength(1);
    s.offer(live(11));
    expect(delivered).toEqual([]);
  });

  it('the gate runs at most `limit` functions at once', async () => {
    const gate = createGate(2);
    let running = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 10 }, () =>
        gate(async () => {
          peak = Math.max(peak, ++running);
          await new Promise((r) => setTimeout(r, 5));
          running--;
        }),
      ),
    );
    expect(peak).toBe(2);
  });

  it('the hub notices a lost last event (the log ahead of what pub/sub delivered for two beats) and the streams fetch it', async () => {
    const { log, state } = fakeLog(3);
    let listener: (e: ScopedEvent) => void = () => {};
    const bus: EventBus = { subscribe: (l) => ((listener = l), () => {}), publish: async () => {}, close: async () => {} };
    const hub = createEventHub(bus, log, createGate(2));
    const { s: st, delivered } = stream(log);
    hub.add(T, st);
    await st.start();
    state.n = 5;
    listener(live(4)); // 5 is never published (lost)
    expect(delivered).toEqual(['4']);
    await hub.checkHeads(); // first beat: maybe just in flight
    expect(delivered).toEqual(['4']);
    await hub.checkHeads(); // second beat: lost; read from the log
    await st.start();
    expect(delivered).toEqual(['4', '5']);
    hub.close();
  });
});
