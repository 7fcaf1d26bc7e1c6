import { createHmac, randomUUID } from 'node:crypto';
import { safeEqualStrings } from './constant-time.ts';

/**
 * The Standard Webhooks signing scheme (standardwebhooks.com): `webhook-id`,
 * `webhook-timestamp` (Unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256>` over
 * `id.timestamp.body`, keyed by the secret's bytes (`whsec_` + base64). Customers verify with
 * the scheme's libraries in any language. Used for agent tool calls, customer webhooks and inbound triggers.
 */

/** The HMAC key of a secret: `whsec_<base64>` decodes to bytes; anything else is taken as UTF-8. */
function keyOf(secret: string): Buffer {
  return secret.startsWith('whsec_') ? Buffer.from(secret.slice(6), 'base64') : Buffer.from(secret, 'utf8');
}

export function signatureOf(secret: string, id: string, timestampSec: number, body: string): string {
  const mac = createHmac('sha256', keyOf(secret)).update(`${id}.${timestampSec}.${body}`).digest('base64');
  return `v1,${mac}`;
}

/** Headers for a signed request carrying `body`. */
export function signHeaders(
  secret: string,
  body: string,
  opts: { id?: string; nowSec?: number } = {},
): Record<string, string> {
  const id = opts.id ?? `msg_${randomUUID().replaceAll('-', '')}`;
  const ts = opts.nowSec ?? Math.floor(Date.now() / 1000);
  return {
    'webhook-id': id,
    'webhook-timestamp': String(ts),
    'webhook-signature': signatureOf(secret, id, ts, body),
  };
}

/** Why {@link checkSignature} refused a request. */
export type SignatureRejection = 'missing' | 'stale' | 'invalid';

export type SignatureCheck =
  | { ok: true; id: string; timestampSec: number }
  | { ok: false; reason: SignatureRejection };

/**
 * Checks a signed request: `missing` when a header is absent or malformed, `stale` when the
 * timestamp is more than `toleranceSec` away from now (either way), `invalid` when no `v1,`
 * signature of the header matches one made with any of `secrets` (several while one rotates).
 */
export function checkSignature(
  secrets: readonly string[],
  headers: { get(name: string): string | null },
  body: string,
  opts: { toleranceSec?: number; nowSec?: number } = {},
): SignatureCheck {
  const id = headers.get('webhook-id');
  const rawTs = headers.get('webhook-timestamp');
  const given = headers.get('webhook-signature');
  const ts = Number(rawTs);
  if (!id || !rawTs || !/^\d{1,12}$/.test(rawTs) || !given) return { ok: false, reason: 'missing' };
  const now = opts.nowSec ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - ts) > (opts.toleranceSec ?? 300)) return { ok: false, reason: 'stale' };
  const offered = given.split(' ');
  for (const secret of secrets) {
    const expected = signatureOf(secret, id, ts, body);
    if (offered.some((s) => safeEqualStrings(s, expected))) return { ok: true, id, timestampSec: ts };
  }
  return { ok: false, reason: 'invalid' };
}

/**
 * Whether `headers` sign `body` with `secret` (any of the space-separated `v1,` signatures),
 * with the timestamp within `toleranceSec` of now.
 */
export function verifySignature(
  secret: string,
  headers: { get(name: string): string | null },
  body: string,
  opts: { toleranceSec?: number; nowSec?: number } = {},
): boolean {
  return checkSignature([secret], headers, body, opts).ok;
}
