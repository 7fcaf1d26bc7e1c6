import { timingSafeEqual } from 'node:crypto';

/**
 * Constant-time equality for secrets, digests and signatures. `crypto.timingSafeEqual` throws
 * when lengths differ; here a length mismatch is simply "not equal" (the length of a digest or
 * signature is fixed by its algorithm, so returning early on it reveals nothing secret).
 */
export function safeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** {@link safeEqual} over the UTF-8 bytes of two strings (encoded signatures, hex digests). */
export function safeEqualStrings(a: string, b: string): boolean {
  return safeEqual(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
