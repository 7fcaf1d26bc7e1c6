import { createHash, randomBytes } from 'node:crypto';
import { safeEqualStrings } from '../../core/auth/index.ts';

/**
 * API keys: `sk_live_` + 32 random bytes in base64url (256 bits). The database keeps only
 * `prefix` (the first 12 random characters, unique, to find the row and to show in lists) and
 * `sha256:<hex>` of the whole key. A fast hash is the right tool here: the key is random, not a
 * password, so nobody can brute-force 256 bits whatever the hash costs, while a slow KDF
 * (scrypt, ~50 ms of CPU by design) would be paid on every authenticated request.
 */
export const API_KEY_PREFIX = 'sk_live_';

/** What a well-formed key looks like; ADMIN_API_KEY's setting enforces the same shape. */
export const API_KEY_PATTERN = /^sk_live_[A-Za-z0-9_-]{24,128}$/;

const LOOKUP_CHARS = 12;

/** A fresh random key, shown to its creator once and never stored. */
export function generateApiKey(): string {
  return API_KEY_PREFIX + randomBytes(32).toString('base64url');
}

/** The lookup part of a key: `sk_live_` and its first 12 random characters. */
export function apiKeyPrefix(key: string): string {
  return key.slice(0, API_KEY_PREFIX.length + LOOKUP_CHARS);
}

/** What the database stores to recognise the key later. */
export function hashApiKey(key: string): string {
  return `sha256:${createHash('sha256').update(key, 'utf8').digest('hex')}`;
}

/** Whether `key` is the key behind `storedHash`, in constant time. */
export function apiKeyMatches(key: string, storedHash: string): boolean {
  return safeEqualStrings(hashApiKey(key), storedHash);
}

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(header: string | null | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return m ? m[1] : null;
}
