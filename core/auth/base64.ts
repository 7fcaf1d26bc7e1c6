/**
 * Strict base64 / base64url decoding for signatures and tokens. Node's decoder is lenient: it
 * skips characters outside the alphabet and ignores the unused low bits of the last character,
 * so several strings decode to the same bytes. Accepting only the canonical encoding means any
 * change to a received signature or token character is a rejection, never a silent match.
 */

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** Decodes `text` only if it is the canonical encoding of its bytes; otherwise null. */
export function decodeCanonicalBase64(text: string, alphabet: 'base64' | 'base64url'): Buffer | null {
  if (typeof text !== 'string' || !(alphabet === 'base64' ? BASE64 : BASE64URL).test(text)) return null;
  const bytes = Buffer.from(text, alphabet);
  return bytes.toString(alphabet) === text ? bytes : null;
}
