/**
 * What every webhook verifier returns. Verifiers never throw on what a caller sent: a route maps
 * `ok: false` to a 403 and logs `reason` (never the signature or the secret).
 */
export type VerifyResult<Reason extends string> = { ok: true } | { ok: false; reason: Reason };

/** A raw request body: the exact bytes received, or their UTF-8 text. */
export type RawBody = Uint8Array | string;

/** True for a value a verifier can hash as a raw body. */
export function isRawBody(value: unknown): value is RawBody {
  return typeof value === 'string' || value instanceof Uint8Array;
}
