// Presence in Redis (server mode): per room a sorted set memberId → expiry (ms) and a hash
// memberId → member JSON, both changed only by the Lua scripts below, so join-with-limit,
// refresh and sweep are atomic across instances. Expiry uses Redis' own clock (TIME), so
// instances with skewed clocks agree on who has expired. Room messages go over one pub/sub
// channel that every instance subscribes to.
import type { Redis } from 'ioredis';
import type { Logger } from '../../platform/log.js';
import type { JoinResult, Member, PresenceStore, RoomMessage } from './presence.js';

// Lua shared by the scripts below (KEYS: zset, hash): removes the entries whose expiry has
// passed (Redis' own clock), leaving `now` and `gone` (their JSON, for member-left).
const EXPIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
local gone = {}
for i, id in ipairs(ids) do
  local m = redis.call('HGET', KEYS[2], id)
  if m then table.insert(gone, m) end
  redis.call('HDEL', KEYS[2], id)
end
if #ids > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) end
`;

// KEYS: zset, hash. Removes expired entries, returns their JSON (for member-left).
const SWEEP = `${EXPIRE}
return gone
`;

// KEYS: zset, hash. ARGV: memberId, member JSON, max members, ttl ms.
// Returns {joined (0/1), expired JSONs, member JSONs}.
const JOIN = `${EXPIRE}
local ttl = tonumber(ARGV[4])
local joined = 1
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  joined = 0
else
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ttl * 2)
  redis.call('PEXPIRE', KEYS[2], ttl * 2)
end
local members = {}
local all = redis.call('ZRANGE', KEYS[1], 0, -1)
for i, id in ipairs(all) do
  local m = redis.call('HGET', KEYS[2], id)
  if m then table.insert(members, m) end
end
return {joined, gone, members}
`;

// KEYS: zset, hash. ARGV: ttl ms, memberIds... Extends present entries; returns the missing ids.
const REFRESH = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local missing = {}
for i = 2, #ARGV do
  if redis.call('ZADD', KEYS[1], 'XX', 'CH', now + ttl, ARGV[i]) == 0 and not redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    table.insert(missing, ARGV[i])
  end
end
redis.call('PEXPIRE', KEYS[1], ttl * 2)
redis.call('PEXPIRE', KEYS[2], ttl * 2)
return missing
`;

// KEYS: zset, hash. ARGV: memberId. Returns the member JSON or nil.
const LEAVE = `
local m = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return false end
return m
`;

type Scripted = Redis & {
  rtSweep(zset: string, hash: string): Promise<string[]>;
  rtJoin(zset: string, hash: string, id: string, json: string, max: number, ttl: number): Promise<[number, string[], string[]]>;
  rtRefresh(zset: string, hash: string, ttl: number, ...ids: string[]): Promise<string[]>;
  rtLeave(zset: string, hash: string, id: string): Promise<string | null>;
};

const parse = (json: string): Member => JSON.parse(json) as Member;

export function createRedisPresence(redis: Redis, subscriber: Redis, prefix: string, log: Logger): PresenceStore {
  const CHANNEL = `${prefix}rooms`;
  const r = redis as Scripted;
  r.defineCommand('rtSweep', { numberOfKeys: 2, lua: SWEEP });
  r.defineCommand('rtJoin', { numberOfKeys: 2, lua: JOIN });
  r.defineCommand('rtRefresh', { numberOfKeys: 2, lua: REFRESH });
  r.defineCommand('rtLeave', { numberOfKeys: 2, lua: LEAVE });
  // Hash tags keep a room's two keys in one slot should this ever run on Redis Cluster.
  const keys = (tenantId: string, room: string): [string, string] => {
    const base = `${prefix}room:{${tenantId}:${room}}`;
    return [`${base}:z`, `${base}:m`];
  };

  const listeners = new Set<(m: RoomMessage) => void>();
  subscriber.on('message', (channel: string, message: string) => {
    if (channel !== CHANNEL) return;
    let m: RoomMessage;
    try {
      m = JSON.parse(message) as RoomMessage;
    } catch {
      log.warn('realtime: unreadable room message ignored');
      return;
    }
    for (const l of listeners) l(m);
  });
  const subscribed = subscriber.subscribe(CHANNEL).catch((err: unknown) => log.warn({ err }, 'realtime: room channel subscription failed'));

  return {
    async join(tenantId, room, member, maxMembers, ttlMs): Promise<JoinResult> {
      await subscribed;
      const [joined, gone, members] = await r.rtJoin(...keys(tenantId, room), member.memberId, JSON.stringify(member), maxMembers, ttlMs);
      return { joined: joined === 1, members: members.map(parse), expired: gone.map(parse) };
    },
    async leave(tenantId, room, memberId) {
      const json = await r.rtLeave(...keys(tenantId, room), memberId);
      return json ? parse(json) : undefined;
    },
    async refresh(tenantId, room, memberIds, ttlMs) {
      if (memberIds.length === 0) return [];
      return r.rtRefresh(...keys(tenantId, room), ttlMs, ...memberIds);
    },
    async sweep(tenantId, room) {
      return (await r.rtSweep(...keys(tenantId, room))).map(parse);
    },
    async publish(m) {
      await redis.publish(CHANNEL, JSON.stringify(m));
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      listeners.clear();
    },
  };
}
