import { createHash } from 'node:crypto';

/** Prefix of every call id a native (`/realtime/voice`) session gets. */
export const NATIVE_CALL_PREFIX = 'web_';
/** Client call ids kept verbatim in the namespaced id; others are hashed (ids stay <= 128 chars). */
const VERBATIM = /^[A-Za-z0-9_.:-]{1,100}$/;

function digest(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

/**
 * Whose calls a native session's call id lives among: the account of its realtime token, or
 * the server-wide key. 12 hex characters of a hash, so ids stay short and never show the key.
 */
export function callNamespace(principal: { accountId: string | null } | { apiKey: string }): string {
  const name = 'apiKey' in principal ? `key:${principal.apiKey}` : `account:${principal.accountId ?? ''}`;
  return digest(name).slice(0, 12);
}

/**
 * The call id of a native session: `web_<namespace>_<client call id>`. A client chooses its own
 * call id, so it is scoped to the client's namespace and can never name a phone call, a campaign
 * call or another client's call (and so never write into their timelines or end them). A client
 * id that is long or uses `+ / =` is hashed instead (`web_<namespace>.<hash>`), keeping the result
 * a valid call id of the control API (`[A-Za-z0-9_.:-]{1,128}`); the separator after the
 * fixed-length namespace tells the two forms apart, so distinct client ids never collide.
 */
export function nativeCallId(namespace: string, clientCallId: string): string {
  if (VERBATIM.test(clientCallId)) return `${NATIVE_CALL_PREFIX}${namespace}_${clientCallId}`;
  return `${NATIVE_CALL_PREFIX}${namespace}.${Buffer.from(digest(clientCallId), 'hex').toString('base64url').slice(0, 32)}`;
}
