/**
 * Cleans strings that came from the wire before they enter a frame or an event. Everything a
 * caller, browser or provider sends may end up in Postgres (`text`/`jsonb`), which refuses NUL
 * (`\u0000`) and lone UTF-16 surrogates: one such character in one event would stop the
 * recorder for every account. So every string a codec lets out passes through here: NUL and the
 * other C0 controls except tab and newline are removed (carriage return too; DEL is kept, it is
 * printable for Postgres), lone surrogates are removed, and the result is cut to a length bound
 * without splitting a surrogate pair.
 */

/** Bounds, in UTF-16 code units, for the kinds of string the codecs let out. */
export const SANITIZE_LIMITS = {
  /** Stop reasons, error codes and error messages. */
  reason: 500,
  /** Mark names (ours look like `utt-12`). */
  markName: 128,
  /** Typed text from a client. */
  text: 4096,
  /** Keys of custom parameters and call metadata. */
  key: 128,
  /** Values of custom parameters and call metadata (SIP headers as JSON can be long). */
  value: 2000,
} as const;

/** Any character we remove: C0 controls but tab and newline, and every surrogate (pairs are put back). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const SUSPECT = /[\u0000-\u0008\u000b-\u001f\ud800-\udfff]/;

/**
 * `value` without NUL, C0 controls other than `\t` and `\n`, and lone surrogates, cut to at most
 * `maxLength` code units (never between the two halves of a pair). Fast when nothing is wrong:
 * one regex test and, if needed, one slice.
 */
export function sanitizeText(value: string, maxLength: number): string {
  if (!SUSPECT.test(value)) return value.length <= maxLength ? value : cut(value, maxLength);
  let out = '';
  const n = value.length;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20) {
      if (c === 0x09 || c === 0x0a) out += value[i];
      continue;
    }
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = i + 1 < n ? value.charCodeAt(i + 1) : 0;
      if (next >= 0xdc00 && next <= 0xdfff) {
        out += value[i]! + value[i + 1]!;
        i++;
      }
      continue;
    }
    if (c >= 0xdc00 && c <= 0xdfff) continue;
    out += value[i];
  }
  return out.length <= maxLength ? out : cut(out, maxLength);
}

/** The first `maxLength` code units, one fewer if that would end on a high surrogate. */
function cut(value: string, maxLength: number): string {
  if (maxLength <= 0) return '';
  const last = value.charCodeAt(maxLength - 1);
  return value.slice(0, last >= 0xd800 && last <= 0xdbff ? maxLength - 1 : maxLength);
}

/** The sanitised string if `value` is a string that is not empty after cleaning, else null. */
export function cleanString(value: unknown, maxLength: number): string | null {
  if (typeof value !== 'string') return null;
  const clean = sanitizeText(value, maxLength);
  return clean.length > 0 ? clean : null;
}

/** A string record (params, call metadata) with keys and values cleaned; entries that clean to an empty key are dropped. */
export function sanitizeRecord(
  record: Record<string, string>,
  maxKey: number = SANITIZE_LIMITS.key,
  maxValue: number = SANITIZE_LIMITS.value,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(record)) {
    const k = sanitizeText(key, maxKey);
    if (k.length === 0) continue;
    out[k] = sanitizeText(record[key]!, maxValue);
  }
  return out;
}

export interface SanitizeJsonOptions {
  /** Longest string kept (longer ones are cut). Default `SANITIZE_LIMITS.text`. */
  maxString?: number;
  /** Deepest nesting kept; deeper values become null. Default 8. */
  maxDepth?: number;
  /** Most keys kept per object and items per array. Default 200. */
  maxEntries?: number;
}

/**
 * A copy of a JSON-like value that Postgres `jsonb` accepts: every string (keys too) cleaned
 * and bounded, non-finite numbers, functions, symbols and bigints made null, depth and width
 * bounded. Cycles end at the depth bound. `toJSON` (Dates) is honoured.
 */
export function sanitizeJson(value: unknown, opts: SanitizeJsonOptions = {}): unknown {
  const maxString = opts.maxString ?? SANITIZE_LIMITS.text;
  const maxDepth = opts.maxDepth ?? 8;
  const maxEntries = opts.maxEntries ?? 200;
  const walk = (v: unknown, depth: number): unknown => {
    if (typeof v === 'string') return sanitizeText(v, maxString);
    if (typeof v === 'number') return Number.isFinite(v) ? v : null;
    if (typeof v === 'boolean' || v === null) return v;
    if (typeof v !== 'object') return null;
    if (typeof (v as { toJSON?: unknown }).toJSON === 'function') {
      try {
        return walk((v as { toJSON(): unknown }).toJSON(), depth);
      } catch {
        return null;
      }
    }
    if (depth >= maxDepth) return null;
    if (Array.isArray(v)) return v.slice(0, maxEntries).map((item) => walk(item, depth + 1) ?? null);
    const out: Record<string, unknown> = {};
    let n = 0;
    for (const key of Object.keys(v)) {
      if (n++ >= maxEntries) break;
      const item = (v as Record<string, unknown>)[key];
      if (item === undefined) continue;
      const k = sanitizeText(key, SANITIZE_LIMITS.key);
      out[k] = walk(item, depth + 1);
    }
    return out;
  };
  return walk(value, 0);
}
