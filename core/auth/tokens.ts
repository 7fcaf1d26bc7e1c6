/**
 * Short-lived signed tokens. Two uses:
 * - `stream`: core's call webhook answer puts one in the media WebSocket URL it hands the
 *   provider, binding that socket to the admitted call (`sub` = call id);
 * - `realtime`: control's `POST /v1/realtime/tokens` mints one for a browser joining
 *   `/realtime/voice` without exposing an API key.
 *
 * Format: `v1.<base64url(JSON claims)>.<base64url(HMAC-SHA256(secret, "v1." + claims part))>`,
 * URL-safe, so it travels in a query string or a WS subprotocol. Not a JWT: one algorithm, no
 * header to negotiate. Verification never throws and never parses unauthenticated JSON.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { decodeCanonicalBase64 } from './base64.ts';
import { safeEqual } from './constant-time.ts';

/** What a token grants: a provider media stream, or a browser realtime session. */
export type TokenKind = 'stream' | 'realtime';

/** Claims the minter chooses; `iat` and `exp` are added by {@link mintToken}. */
export interface MintClaims {
  kind: TokenKind;
  /** The call id; required for `stream` tokens. */
  sub?: string;
  agentId: string;
  /**
   * `realtime` tokens: the account that minted it. Core opens only that account's agents and
   * scopes the client's call ids to it; a token without one opens only agents of no account.
   */
  accountId?: string;
  /** Unique token id (generated when absent) so a consumer can make a token single-use. */
  jti?: string;
  /** Extra string claims (campaign id, caller, …). */
  [extra: string]: string | undefined;
}

/** Claims of a verified token. Times are unix seconds. */
export interface TokenClaims {
  kind: TokenKind;
  sub?: string;
  agentId: string;
  /** See {@link MintClaims.accountId}. */
  accountId?: string;
  iat: number;
  exp: number;
  jti?: string;
  [extra: string]: string | number | undefined;
}

/** Why a token was rejected. `no_key` means we were given no secret at all. */
export type TokenRejection =
  | 'missing'
  | 'malformed'
  | 'mismatch'
  | 'wrong_kind'
  | 'expired'
  | 'not_yet_valid'
  | 'wrong_call'
  | 'no_key';

/** Result of {@link verifyToken}. */
export type TokenResult = { ok: true; claims: TokenClaims } | { ok: false; reason: TokenRejection };

/** What the verifier expects of a token. */
export interface VerifyTokenOptions {
  kind: TokenKind;
  /** When given, the token's `sub` must equal it. */
  callId?: string;
  /** Our clock, for tests. Default: now. */
  nowSec?: number;
}

/**
 * Longest lifetime a token may have: 15 minutes. A token only has to survive from minting to the
 * WebSocket upgrade (seconds for a provider, a page load for a browser); the socket then lives on.
 */
export const MAX_TOKEN_TTL_SEC = 900;
/** Shortest secret {@link mintToken} accepts; use 32 random bytes in production. */
export const MIN_SECRET_LENGTH = 16;
/** Tolerated clock difference between the minting node and the verifying node. */
export const CLOCK_SKEW_SEC = 30;
/** Bounds the work a hostile token can cause. */
const MAX_TOKEN_LENGTH = 4096;
const VERSION = 'v1';
const KINDS: ReadonlySet<string> = new Set<TokenKind>(['stream', 'realtime']);
const HMAC_BYTES = 32;

/**
 * Mints a token valid for `ttlSec` (1…{@link MAX_TOKEN_TTL_SEC}) from `nowSec`. Throws RangeError /
 * TypeError on a bad TTL, a short secret or non-string claims: these are our own inputs.
 */
export function mintToken(secret: string, claims: MintClaims, ttlSec: number, nowSec = unixNow()): string {
  if (typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH) {
    throw new RangeError(`token secret must be at least ${MIN_SECRET_LENGTH} characters`);
  }
  if (!Number.isSafeInteger(ttlSec) || ttlSec <= 0 || ttlSec > MAX_TOKEN_TTL_SEC) {
    throw new RangeError(`ttlSec must be a whole number in 1..${MAX_TOKEN_TTL_SEC}`);
  }
  if (!Number.isSafeInteger(nowSec) || nowSec < 0) throw new RangeError('nowSec must be whole unix seconds');
  const full: Record<string, unknown> = {
    ...claims,
    jti: claims.jti ?? randomUUID(),
    iat: nowSec,
    exp: nowSec + ttlSec,
  };
  if (!validClaims(full)) throw new TypeError('token claims: kind, agentId and string extras required');
  const payload = Buffer.from(JSON.stringify(full), 'utf8').toString('base64url');
  return `${VERSION}.${payload}.${hmac(secret, payload).toString('base64url')}`;
}

/** Verifies a token against one secret or several (rotation). Never throws. */
export function verifyToken(
  secret: string | readonly string[],
  token: string | null | undefined,
  options: VerifyTokenOptions,
): TokenResult {
  const secrets = (typeof secret === 'string' ? [secret] : Array.isArray(secret) ? secret : []).filter(
    (s): s is string => typeof s === 'string' && s.length > 0,
  );
  if (secrets.length === 0) return { ok: false, reason: 'no_key' };
  if (token === undefined || token === null || token === '') return { ok: false, reason: 'missing' };
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'malformed' };
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== VERSION) return { ok: false, reason: 'malformed' };
  const [, payload, signaturePart] = parts;
  const signature = decodeCanonicalBase64(signaturePart, 'base64url');
  const payloadBytes = decodeCanonicalBase64(payload, 'base64url');
  if (signature?.length !== HMAC_BYTES || !payloadBytes || payloadBytes.length === 0) {
    return { ok: false, reason: 'malformed' };
  }

  let matched = false;
  for (const s of secrets) matched = safeEqual(hmac(s, payload), signature) || matched;
  if (!matched) return { ok: false, reason: 'mismatch' };

  const claims = parseClaims(payloadBytes);
  if (!claims) return { ok: false, reason: 'malformed' };
  if (claims.kind !== options.kind) return { ok: false, reason: 'wrong_kind' };
  const nowSec = options.nowSec ?? unixNow();
  if (!Number.isFinite(nowSec) || claims.exp <= nowSec) return { ok: false, reason: 'expired' };
  if (claims.iat > nowSec + CLOCK_SKEW_SEC) return { ok: false, reason: 'not_yet_valid' };
  if (options.callId !== undefined && claims.sub !== options.callId) {
    return { ok: false, reason: 'wrong_call' };
  }
  return { ok: true, claims };
}

function hmac(secret: string, payload: string): Buffer {
  return createHmac('sha256', secret).update(`${VERSION}.${payload}`, 'utf8').digest();
}

function parseClaims(bytes: Buffer): TokenClaims | null {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return null;
  }
  return validClaims(value) ? value : null;
}

/** The claims' shape, including the lifetime bound, so only tokens we could mint pass. */
function validClaims(value: unknown): value is TokenClaims {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const { kind, sub, agentId, iat, exp, ...extra } = value as Record<string, unknown>;
  if (typeof kind !== 'string' || !KINDS.has(kind)) return false;
  if (typeof agentId !== 'string' || agentId.length === 0) return false;
  if (!Number.isSafeInteger(iat) || !Number.isSafeInteger(exp)) return false;
  const lifetime = (exp as number) - (iat as number);
  if (lifetime <= 0 || lifetime > MAX_TOKEN_TTL_SEC) return false;
  if (sub !== undefined && (typeof sub !== 'string' || sub.length === 0)) return false;
  if (kind === 'stream' && sub === undefined) return false;
  return Object.values(extra).every((v) => v === undefined || typeof v === 'string');
}

function unixNow(): number {
  return Math.floor(Date.now() / 1000);
}
