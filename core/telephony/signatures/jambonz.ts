/**
 * Jambonz-Signature: proves a webhook came from our Jambonz account.
 *
 * Source: jambonz docs, "Webhooks: verifying a signed request", and @jambonz/node-client
 * `WebhookResponse.verifyJambonzSignature` (lib/webhook-response.js):
 * - header `Jambonz-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`;
 * - several `v1=` entries may appear, and several secrets may be valid (rotation);
 * - timestamps older than 300 s are rejected. We also reject those more than the tolerance ahead
 *   of our clock, and verify over the raw body bytes, never a re-serialised JSON.
 */
import { createHmac } from 'node:crypto';
import { safeEqualStrings } from '../../auth/constant-time.ts';
import {
  DEFAULT_TOLERANCE_SEC,
  MAX_UNIX_SECONDS,
  nowUnixSeconds,
  parseUnixSeconds,
  staleness,
} from './freshness.ts';
import { isRawBody, type RawBody, type VerifyResult } from './verify-result.ts';

/** Why a Jambonz request was rejected. `no_key` means we were given no secret at all. */
export type JambonzRejection = 'missing' | 'malformed' | 'mismatch' | 'expired' | 'future' | 'no_key';

/** One received Jambonz webhook, as the route hands it over. */
export interface JambonzRequest {
  /** The `Jambonz-Signature` header. */
  header: string | null | undefined;
  /** The body exactly as received. */
  rawBody: RawBody;
  /** The account's webhook secret; give `secrets` too (or instead) while rotating. */
  secret?: string;
  secrets?: readonly string[];
  /** Accepted distance between the signed timestamp and now, both ways. Default 300. */
  toleranceSec?: number;
  /** Our clock, for tests. Default: now. */
  nowSec?: number;
}

/** Bounds the work a hostile header can cause. */
const MAX_HEADER_LENGTH = 4096;
const HEX_SHA256 = /^[0-9a-f]{64}$/i;

/**
 * The `Jambonz-Signature` header value Jambonz would send for `rawBody` at `tSec`, one `v1=` per
 * secret. For tests, fakes and the load generator. Throws RangeError on a bad time or no secret.
 */
export function signJambonz(secret: string | readonly string[], rawBody: RawBody, tSec: number): string {
  const secrets = typeof secret === 'string' ? [secret] : [...secret];
  if (!Number.isSafeInteger(tSec) || tSec < 0 || tSec > MAX_UNIX_SECONDS) {
    throw new RangeError('tSec must be a whole unix time in seconds');
  }
  if (secrets.length === 0 || secrets.some((s) => s.length === 0)) {
    throw new RangeError('a secret is required');
  }
  return [`t=${tSec}`, ...secrets.map((s) => `v1=${computeJambonzSignature(s, rawBody, tSec)}`)].join(',');
}

/** Checks a Jambonz webhook's signature and freshness. Never throws. */
export function verifyJambonzRequest(request: JambonzRequest): VerifyResult<JambonzRejection> {
  const secrets = [request.secret, ...(request.secrets ?? [])].filter(
    (secret): secret is string => typeof secret === 'string' && secret.length > 0,
  );
  if (secrets.length === 0) return { ok: false, reason: 'no_key' };
  const { header, rawBody } = request;
  if (header === undefined || header === null || header === '') return { ok: false, reason: 'missing' };
  if (typeof header !== 'string' || !isRawBody(rawBody)) return { ok: false, reason: 'malformed' };
  const parsed = parseHeader(header);
  if (!parsed) return { ok: false, reason: 'malformed' };

  const stale = staleness(
    parsed.tSec,
    request.nowSec ?? nowUnixSeconds(),
    request.toleranceSec ?? DEFAULT_TOLERANCE_SEC,
  );
  if (stale) return { ok: false, reason: stale };

  let matched = false;
  for (const secret of secrets) {
    const expected = computeJambonzSignature(secret, rawBody, parsed.t);
    for (const candidate of parsed.v1) matched = safeEqualStrings(expected, candidate) || matched;
  }
  return matched ? { ok: true } : { ok: false, reason: 'mismatch' };
}

/** hex HMAC-SHA256(secret, t + "." + rawBody), over the raw bytes. */
function computeJambonzSignature(secret: string, rawBody: RawBody, t: string | number): string {
  return createHmac('sha256', secret).update(`${t}.`, 'utf8').update(rawBody).digest('hex');
}

/**
 * `t=…,v1=…[,v1=…]`: exactly one decimal `t`, at least one 64-hex `v1` (compared lower-cased);
 * other schemes (`v0=` …) are ignored, as Jambonz's own parser does. Anything else is null.
 */
function parseHeader(header: string): { t: string; tSec: number; v1: string[] } | null {
  if (header.length > MAX_HEADER_LENGTH) return null;
  let t: string | null = null;
  const v1: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq === -1) return null;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') {
      if (t !== null) return null;
      t = value;
    } else if (key === 'v1') {
      if (!HEX_SHA256.test(value)) return null;
      v1.push(value.toLowerCase());
    }
  }
  const tSec = t === null ? null : parseUnixSeconds(t);
  if (t === null || tSec === null || v1.length === 0) return null;
  return { t, tSec, v1 };
}
