/**
 * Small, allocation-light helpers shared by the wire codecs. Internal to `core/wire/`: the
 * folder's `index.ts` re-exports only the limits callers may want to configure.
 */
import { cleanString, SANITIZE_LIMITS, sanitizeText } from './sanitize.ts';

/** Inbound audio frames larger than this are dropped by default (≈680 ms of 48 kHz pcm16). */
export const MAX_AUDIO_BYTES = 64 * 1024;

/** Mark names longer than this are refused both ways (ours look like `utt-12`). */
export const MAX_MARK_NAME = 128;

/** A plain JSON object as `JSON.parse` returns it. */
export type JsonObject = Record<string, unknown>;

/** `JSON.parse` that never throws and only accepts a top-level object. */
export function parseObject(raw: string): JsonObject | null {
  // Every message shape we accept is an object: skip the parse for anything else.
  if (raw.charCodeAt(0) !== 123 /* { */) return null;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return null;
  }
  return asObject(value);
}

/** The value if it is a non-array object, else null. */
export function asObject(value: unknown): JsonObject | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as JsonObject) : null;
}

/** The value if it is a string of 1..maxLength characters, else null. */
export function boundedString(value: unknown, maxLength: number): string | null {
  return typeof value === 'string' && value.length > 0 && value.length <= maxLength ? value : null;
}

/**
 * Ids we embed in outbound JSON or use as keys (stream/call ids) are checked once, at start,
 * against this set, so they never need escaping afterwards.
 */
const SAFE_ID = /^[A-Za-z0-9._:+/=-]{1,128}$/;

/** True when `value` is a string id made only of characters that need no JSON escaping. */
export function isSafeId(value: unknown): value is string {
  return typeof value === 'string' && SAFE_ID.test(value);
}

/** DTMF events: 0-9, *, # and the rarely used A-D (RFC 4733 events 0-15). */
const DTMF_DIGIT = /^[0-9*#A-D]$/;

/** True when `value` is one DTMF digit. */
export function isDtmfDigit(value: unknown): value is string {
  return typeof value === 'string' && DTMF_DIGIT.test(value);
}

/** A finite number from a number or a numeric string (providers send both), else undefined. */
export function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string' && value.length > 0 && value.length <= 20) {
    const n = Number(value);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/**
 * Copies string, number and boolean values as strings; other values (objects, null) are
 * skipped. Keys and values are sanitised (sanitize.ts) and bounded: they reach the Store and
 * Postgres as call metadata.
 */
export function stringFields(
  source: JsonObject | null,
  target: Record<string, string> = {},
): Record<string, string> {
  if (source === null) return target;
  for (const key of Object.keys(source)) {
    const value = source[key];
    let text: string;
    if (typeof value === 'string') text = value;
    else if (typeof value === 'number' || typeof value === 'boolean') text = String(value);
    else continue;
    const k = sanitizeText(key, SANITIZE_LIMITS.key);
    if (k.length > 0) target[k] = sanitizeText(text, SANITIZE_LIMITS.value);
  }
  return target;
}

/**
 * Decodes a base64 audio payload into a Buffer (a Uint8Array, pooled for small sizes: no copy
 * beyond the decode itself). Null when the payload is not a string, is empty, or would decode to
 * more than `maxBytes`. Node's decoder skips characters outside the alphabet instead of failing,
 * so garbage decodes to fewer bytes; we check only type and size on this hot path.
 */
export function decodeBase64Audio(payload: unknown, maxBytes: number): Uint8Array | null {
  if (typeof payload !== 'string' || payload.length === 0) return null;
  if (payload.length > Math.ceil(maxBytes / 3) * 4) return null;
  const bytes = Buffer.from(payload, 'base64');
  return bytes.byteLength === 0 ? null : bytes;
}

/** Base64 of `data` without copying it first (a Buffer view over the same memory). */
export function encodeBase64(data: Uint8Array): string {
  const view = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return view.toString('base64');
}

/**
 * The mark name if it is acceptable on the wire (1..MAX_MARK_NAME chars once sanitised), else
 * null. Longer names are refused rather than cut: a mark we did not send matches nothing.
 */
export function markName(value: unknown): string | null {
  if (typeof value !== 'string' || value.length > MAX_MARK_NAME) return null;
  return cleanString(value, MAX_MARK_NAME);
}
