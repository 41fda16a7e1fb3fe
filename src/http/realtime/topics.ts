// What a client can subscribe to (CONTRACT.md "Real time"), parsed once into a small tagged value
// that both decides which events a connection receives and which service call authorizes it.
//
//   patients/{id}                    that patient's own events (patient.created/updated/deleted)
//   questionnaire-responses/{id}     that response's events
//   questionnaires/{id}/responses    events of every response to that questionnaire (a patient
//                                    principal gets only its own, as with the REST list)
//   rooms/{name}                     membership of a room: presence, join/leave, typing
//
// appointments/{locationId}/{date} is in the contract but appointments do not exist yet: it is
// refused with a message saying so, like any unknown topic.
import type { ErrorDetail } from '../../errors.js';
import type { ScopedEvent } from '../../features/events/events.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** A free room name (staff only): lower-case letters, digits, dot, dash, underscore. */
const FREE_ROOM = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** Resource types a room may be named for (`rooms/<type>:<id>`): joining needs read access to it. */
export const ROOM_RESOURCES = ['patients', 'questionnaire-responses'] as const;
export type RoomResource = (typeof ROOM_RESOURCES)[number];

export const MAX_TOPIC_LENGTH = 200;

export type Topic =
  | { readonly kind: 'patient'; readonly key: string; readonly id: string }
  | { readonly kind: 'response'; readonly key: string; readonly id: string }
  | { readonly kind: 'questionnaire-responses'; readonly key: string; readonly questionnaireId: string }
  | { readonly kind: 'room'; readonly key: string; readonly room: string; readonly resource?: { readonly type: RoomResource; readonly id: string } };

export const TOPIC_FORMS = 'patients/{id}, questionnaire-responses/{id}, questionnaires/{id}/responses or rooms/{name}';

/** The topic, or the reason it is refused (a message for an error detail; never echoes the input). */
export function parseTopic(raw: string): Topic | { problem: string } {
  if (raw.length > MAX_TOPIC_LENGTH) return { problem: `must be at most ${MAX_TOPIC_LENGTH} characters` };
  const parts = raw.split('/');
  const [head, id, tail] = parts;
  if (head === 'patients' && parts.length === 2) {
    return id && UUID.test(id) ? { kind: 'patient', key: `patients/${id.toLowerCase()}`, id: id.toLowerCase() } : { problem: 'patients/{id} needs a UUID' };
  }
  if (head === 'questionnaire-responses' && parts.length === 2) {
    return id && UUID.test(id) ? { kind: 'response', key: `questionnaire-responses/${id.toLowerCase()}`, id: id.toLowerCase() } : { problem: 'questionnaire-responses/{id} needs a UUID' };
  }
  if (head === 'questionnaires' && parts.length === 3 && tail === 'responses') {
    return id && UUID.test(id)
      ? { kind: 'questionnaire-responses', key: `questionnaires/${id.toLowerCase()}/responses`, questionnaireId: id.toLowerCase() }
      : { problem: 'questionnaires/{id}/responses needs a UUID' };
  }
  if (head === 'rooms' && parts.length === 2 && id) return parseRoom(id);
  if (head === 'appointments') return { problem: 'appointments topics are not available yet' };
  return { problem: `unknown topic; expected ${TOPIC_FORMS}` };
}

/** `rooms/<name>`: a free name, or `<resource type>:<uuid>` for a room about one record. */
export function parseRoom(name: string): Topic | { problem: string } {
  const colon = name.indexOf(':');
  if (colon < 0) {
    return FREE_ROOM.test(name) ? { kind: 'room', key: `rooms/${name}`, room: name } : { problem: 'a room name is 1-64 of a-z 0-9 . _ - (starting with a letter or digit), or <type>:<id>' };
  }
  const type = name.slice(0, colon);
  const id = name.slice(colon + 1);
  if (!(ROOM_RESOURCES as readonly string[]).includes(type)) return { problem: `a room named for a record is ${ROOM_RESOURCES.map((r) => `${r}:<id>`).join(' or ')}` };
  if (!UUID.test(id)) return { problem: `rooms/${type}:<id> needs a UUID` };
  const room = `${type}:${id.toLowerCase()}`;
  return { kind: 'room', key: `rooms/${room}`, room, resource: { type: type as RoomResource, id: id.toLowerCase() } };
}

/**
 * Parses every topic; the problems name the index of each bad one under `pathPrefix` (e.g.
 * `/topics` for WebSocket messages, `/query/topic` for SSE), so one answer lists every problem.
 */
export function parseTopics(raws: readonly string[], pathPrefix: string): { topics: Topic[]; problems: ErrorDetail[] } {
  const topics = new Map<string, Topic>();
  const problems: ErrorDetail[] = [];
  raws.forEach((raw, i) => {
    const t = parseTopic(raw);
    if ('problem' in t) problems.push({ path: `${pathPrefix}/${i}`, message: t.problem });
    else topics.set(t.key, t);
  });
  return { topics: [...topics.values()], problems };
}

/** Whether an event belongs to a topic (rooms carry no resource events). */
export function topicMatches(t: Topic, e: ScopedEvent): boolean {
  switch (t.kind) {
    case 'patient':
      return e.resource.type === 'patients' && e.resource.id === t.id;
    case 'response':
      return e.resource.type === 'questionnaire-responses' && e.resource.id === t.id;
    case 'questionnaire-responses':
      return e.resource.type === 'questionnaire-responses' && e.questionnaireId === t.questionnaireId;
    case 'room':
      return false;
  }
}
