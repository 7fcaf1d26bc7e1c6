/**
 * Telnyx webhook signatures: Ed25519, so we hold only Telnyx's public key.
 *
 * Source: Telnyx developer docs, "Webhooks" (api-fundamentals/webhooks) and every callback page
 * in the API reference ("Ed25519 signature of timestamp|payload"), and the Telnyx SDKs' webhook
 * verification (telnyx-python `webhook_verification.py`, telnyx-ruby `WebhookVerification`):
 * - header `telnyx-signature-ed25519`: base64 of the 64-byte Ed25519 signature;
 * - header `telnyx-timestamp`: unix seconds;
 * - signed message: `${timestamp}|${raw body}` (a literal `|`, the body bytes as received);
 * - key: the account public key from Mission Control (Keys & Credentials → Public Key), base64 of
 *   the raw 32-byte key; the SDKs use a 300 s tolerance. We also reject timestamps that far ahead.
 */
import { createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { decodeCanonicalBase64 } from '../../auth/base64.ts';
import { DEFAULT_TOLERANCE_SEC, nowUnixSeconds, parseUnixSeconds, staleness } from './freshness.ts';
import { isRawBody, type RawBody, type VerifyResult } from './verify-result.ts';

/** A Telnyx public key: base64 raw key (as the portal shows it), PEM, DER SPKI bytes, or parsed. */
export type TelnyxPublicKey = string | Uint8Array | KeyObject;

/** Why a Telnyx request was rejected. `no_key` means no usable public key was configured. */
export type TelnyxRejection = 'missing' | 'malformed' | 'mismatch' | 'expired' | 'future' | 'no_key';

/** One received Telnyx webhook, as the route hands it over. */
export interface TelnyxRequest {
  /** The `telnyx-signature-ed25519` header. */
  signature: string | null | undefined;
  /** The `telnyx-timestamp` header. */
  timestamp: string | null | undefined;
  /** The body exactly as received. */
  rawBody: RawBody;
  /** Telnyx's public key (several while rotating). Parse once with {@link parseTelnyxPublicKey}. */
  publicKey: TelnyxPublicKey | readonly TelnyxPublicKey[];
  /** Accepted distance between the signed timestamp and now, both ways. Default 300. */
  toleranceSec?: number;
  /** Our clock, for tests. Default: now. */
  nowSec?: number;
}

/** DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the raw 32-byte key follows it. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const BASE64_KEY = /^[A-Za-z0-9+/_-]+={0,2}$/;
const ED25519_SIGNATURE_BYTES = 64;

/** Turns a configured key into a KeyObject once, at boot; null when it is not an Ed25519 key. */
export function parseTelnyxPublicKey(key: TelnyxPublicKey): KeyObject | null {
  try {
    if (typeof key === 'string') {
      const text = key.trim();
      if (text.startsWith('-----BEGIN')) return ed25519Only(createPublicKey({ key: text, format: 'pem' }));
      return BASE64_KEY.test(text) ? parseTelnyxPublicKey(Buffer.from(text, 'base64')) : null;
    }
    if (key instanceof Uint8Array) {
      const bytes = Buffer.from(key);
      const der = bytes.length === 32 ? Buffer.concat([ED25519_SPKI_PREFIX, bytes]) : bytes;
      return ed25519Only(createPublicKey({ key: der, format: 'der', type: 'spki' }));
    }
    return ed25519Only(key);
  } catch {
    return null;
  }
}

/** Checks a Telnyx webhook's Ed25519 signature and freshness. Never throws. */
export function verifyTelnyxRequest(request: TelnyxRequest): VerifyResult<TelnyxRejection> {
  const configured: readonly TelnyxPublicKey[] = Array.isArray(request.publicKey)
    ? request.publicKey
    : [request.publicKey as TelnyxPublicKey];
  const keys = configured.map(parseTelnyxPublicKey).filter((key): key is KeyObject => key !== null);
  if (keys.length === 0) return { ok: false, reason: 'no_key' };
  const { signature, timestamp, rawBody } = request;
  if (!signature || !timestamp) return { ok: false, reason: 'missing' };
  if (typeof signature !== 'string' || typeof timestamp !== 'string' || !isRawBody(rawBody)) {
    return { ok: false, reason: 'malformed' };
  }
  const signatureBytes = decodeCanonicalBase64(signature, 'base64');
  const tSec = parseUnixSeconds(timestamp);
  if (signatureBytes?.length !== ED25519_SIGNATURE_BYTES || tSec === null) {
    return { ok: false, reason: 'malformed' };
  }
  const stale = staleness(
    tSec,
    request.nowSec ?? nowUnixSeconds(),
    request.toleranceSec ?? DEFAULT_TOLERANCE_SEC,
  );
  if (stale) return { ok: false, reason: stale };

  const message = signedMessage(timestamp, rawBody);
  let matched = false;
  for (const key of keys) matched = verifySafely(message, key, signatureBytes) || matched;
  return matched ? { ok: true } : { ok: false, reason: 'mismatch' };
}

/**
 * The two headers Telnyx would send for `rawBody` at `tSec`, signed with `privateKey` (an Ed25519
 * private KeyObject). For tests and fakes that play Telnyx.
 */
export function signTelnyx(
  privateKey: KeyObject,
  rawBody: RawBody,
  tSec: number,
): { signature: string; timestamp: string } {
  const timestamp = String(tSec);
  return {
    signature: sign(null, signedMessage(timestamp, rawBody), privateKey).toString('base64'),
    timestamp,
  };
}

function signedMessage(timestamp: string, rawBody: RawBody): Buffer {
  const body = typeof rawBody === 'string' ? Buffer.from(rawBody, 'utf8') : rawBody;
  return Buffer.concat([Buffer.from(`${timestamp}|`, 'utf8'), body]);
}

function verifySafely(message: Buffer, key: KeyObject, signature: Buffer): boolean {
  try {
    return verify(null, message, key, signature);
  } catch {
    return false;
  }
}

function ed25519Only(key: KeyObject): KeyObject | null {
  return key.asymmetricKeyType === 'ed25519' ? key : null;
}
