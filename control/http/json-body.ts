import { ApiError, invalidField, payloadTooLarge } from '../errors.ts';

/** Deepest nesting of arrays and objects a JSON body may have; the API's own schemas need far less. */
export const MAX_JSON_DEPTH = 32;

/**
 * The body as UTF-8 text, read until `limitBytes` and no further (a chunked body declares no
 * length, so counting as it arrives is the only bound). 413 past the limit, 400 on invalid UTF-8.
 */
export async function readBodyText(req: Request, limitBytes: number): Promise<string> {
  if (!req.body) return '';
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limitBytes) {
      await reader.cancel().catch(() => {});
      throw payloadTooLarge(limitBytes);
    }
    chunks.push(value);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new ApiError(400, 'malformed_body', 'request body is not valid UTF-8');
  }
}

/**
 * Whether the JSON text nests arrays and objects deeper than `maxDepth`, decided in one pass
 * over the text before anything parses or validates it (validation cost grows with depth).
 */
export function jsonTooDeep(text: string, maxDepth = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/**
 * The dotted path of the first string (value or property name) holding a NUL character, or null.
 * No field of the API takes one, and PostgreSQL stores none in text or jsonb.
 */
export function pathOfNul(value: unknown, path = ''): string | null {
  if (typeof value === 'string') return value.includes('\u0000') ? path || '(body)' : null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = pathOfNul(value[i], path ? `${path}.${i}` : String(i));
      if (found) return found;
    }
    return null;
  }
  if (value !== null && typeof value === 'object') {
    for (const [key, v] of Object.entries(value)) {
      const field = path ? `${path}.${key}` : key;
      if (key.includes('\u0000')) return field;
      const found = pathOfNul(v, field);
      if (found) return found;
    }
  }
  return null;
}

/**
 * A JSON body parsed under the API's limits: at most `limitBytes`, nesting at most
 * {@link MAX_JSON_DEPTH}, no NUL in any string. Errors name the rule broken (and the field).
 */
export async function parseJsonBody(req: Request, limitBytes: number): Promise<unknown> {
  const text = await readBodyText(req, limitBytes);
  if (jsonTooDeep(text)) {
    throw new ApiError(400, 'body_too_deep', `JSON nests deeper than ${MAX_JSON_DEPTH} levels`, {
      maxDepth: MAX_JSON_DEPTH,
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ApiError(400, 'malformed_body', 'request body is not valid JSON');
  }
  const nul = pathOfNul(value);
  if (nul) {
    throw invalidField(nul, 'must not contain NUL characters');
  }
  return value;
}
