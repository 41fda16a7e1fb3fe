// WebSocket client messages → the connection. Messages of one connection are handled one at a
// time, in order (a subscribe sent before a request is attached before the request runs).
//
//   {"type":"subscribe","topics":[…],"after"?:"<id>"} → {"type":"subscribed","topics","lastEventId","rooms"}
//   {"type":"unsubscribe","topics":[…]}                → {"type":"unsubscribed","topics"}
//   {"type":"resume","after":"<id>"}                    → replay, then {"type":"resumed","lastEventId"}
//   {"type":"typing","room":"<name>","typing":bool}     → (the room's other members get "typing")
//   {"type":"request","id","method","path","headers"?,"body"?} → {"type":"response","id","status","headers","body"}
//   {"type":"ping"}                                     → {"type":"pong","lastEventId"}
// Any refusal: {"type":"error","id"?, …the contract's error envelope}.
import { randomUUID } from 'node:crypto';
import type { Static } from 'typebox';
import type { ValidateFunction } from 'ajv';
import { AppError, envelope, validationFailed } from '../../errors.js';
import { formatErrors, strictAjv } from '../../platform/validation.js';
import { toAppError } from '../error-handler.js';
import type { Connection } from './connection.js';
import { dispatchRequest } from './dispatch.js';
import { ClientMessages, type ClientMessageType } from './schemas.js';
import type { RealtimeState } from './state.js';

const validators = Object.fromEntries(Object.entries(ClientMessages).map(([type, schema]) => [type, strictAjv.compile(schema)])) as Record<ClientMessageType, ValidateFunction>;
const TYPES = Object.keys(ClientMessages).join(', ');

type Msg<T extends ClientMessageType> = Static<(typeof ClientMessages)[T]>;

/** Parses and checks one message; throws the AppError the client gets. */
export function parseMessage(data: string): { [T in ClientMessageType]: Msg<T> }[ClientMessageType] {
  let msg: unknown;
  try {
    msg = JSON.parse(data);
  } catch {
    throw new AppError('MALFORMED_REQUEST', 'The message is not valid JSON');
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) throw new AppError('MALFORMED_REQUEST', 'A message is a JSON object with a type');
  const type = (msg as { type?: unknown }).type;
  if (typeof type !== 'string' || !Object.hasOwn(ClientMessages, type)) throw validationFailed([{ path: '/type', message: `must be one of ${TYPES}` }]);
  const validate = validators[type as ClientMessageType];
  if (!validate(msg)) throw validationFailed(formatErrors(validate.errors));
  return msg as never;
}

/** The client's `id` of a message, when it has a usable one (echoed in error replies). */
function idOf(data: string): string | undefined {
  try {
    const id = (JSON.parse(data) as { id?: unknown }).id;
    return typeof id === 'string' && id.length <= 64 ? id : undefined;
  } catch {
    return undefined;
  }
}

export async function handleMessage(rt: RealtimeState, conn: Connection, data: string): Promise<void> {
  const requestId = randomUUID();
  try {
    const msg = parseMessage(data);
    const id = msg.id !== undefined ? { id: msg.id } : {};
    switch (msg.type) {
      case 'subscribe': {
        const r = await conn.subscribe(msg.topics, requestId, '/topics', msg.after === undefined ? undefined : BigInt(msg.after));
        return conn.send({ type: 'subscribed', ...id, ...r });
      }
      case 'unsubscribe':
        return conn.send({ type: 'unsubscribed', ...id, topics: await conn.unsubscribe(msg.topics, '/topics') });
      case 'resume':
        return conn.send({ type: 'resumed', ...id, lastEventId: await conn.resume(BigInt(msg.after)) });
      case 'typing':
        return conn.typing(msg.room, msg.typing);
      case 'ping':
        // The position lets a client whose topics were quiet resume from here, not from its last event.
        return conn.send({ type: 'pong', ...id, lastEventId: conn.lastEventId });
      case 'request': {
        const headers = Object.fromEntries(Object.entries(msg.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
        const res = await dispatchRequest(rt.app, conn.principal, { method: msg.method, path: msg.path, headers, body: msg.body }, {
          requestId,
          ...(conn.meta.ip ? { ip: conn.meta.ip } : {}),
          ...(conn.meta.userAgent ? { userAgent: conn.meta.userAgent } : {}),
        });
        return conn.send({ type: 'response', id: msg.id, ...res });
      }
    }
  } catch (err) {
    const appErr = toAppError(err);
    if (appErr.status >= 500) rt.deps.log.error({ err, code: appErr.code, requestId }, 'realtime: message failed');
    const id = idOf(data);
    conn.send({ type: 'error', ...(id !== undefined ? { id } : {}), ...envelope(appErr, requestId) });
  }
}
