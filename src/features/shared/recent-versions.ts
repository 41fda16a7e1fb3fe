// The last version of each resource this process wrote or read, bounded (least recently used out).
// Only for conditional changes (If-Match): a version's content never changes, so when the client
// names exactly the version held here, the change can start from it without reading the cache or
// the database; the compare-and-set then proves the database is still at that version. Never used
// to answer a read, so it cannot serve anything stale.
const MAX_ENTRIES = 10_000;
const recent = new Map<string, { version: number }>();

const keyOf = (tenantId: string, type: string, id: string) => `${tenantId}/${type}/${id.toLowerCase()}`;

export function rememberVersion(tenantId: string, type: string, resource: { id: string; version: number }): void {
  const key = keyOf(tenantId, type, resource.id);
  recent.delete(key);
  if (recent.size >= MAX_ENTRIES) recent.delete(recent.keys().next().value!);
  recent.set(key, resource);
}

/** The remembered resource if it is at exactly `version`. */
export function recentAt<T extends { version: number }>(tenantId: string, type: string, id: string, version: number): T | undefined {
  const hit = recent.get(keyOf(tenantId, type, id));
  return hit?.version === version ? (hit as T) : undefined;
}

/** Drops what this process remembers of a resource (erasure: nothing of it may stay in memory). */
export function forgetVersion(tenantId: string, type: string, id: string): void {
  recent.delete(keyOf(tenantId, type, id));
}
