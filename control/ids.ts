import { randomBytes } from 'node:crypto';

/** Crockford base32 in lower case: digits sort before letters, so ids sort like their time. */
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const TIME_CHARS = 10;
const RANDOM_CHARS = 16;

/** The id prefixes the API hands out, one per resource. */
export type IdPrefix = 'acc' | 'key' | 'agt' | 'num' | 'cal' | 'cmp' | 'whk' | 'trg';

let lastMs = -1;
const lastRandom = new Uint8Array(RANDOM_CHARS);

/**
 * A resource id such as `agt_01j9x6k3m2q8w5r7t4v0y1z3ab`: 10 characters of milliseconds since the
 * epoch, then 16 random characters (80 bits), ULID-style. Ids sort bytewise in creation order
 * (within one process strictly: a second id in the same millisecond increments the random
 * part), so lists page on the primary key alone; the random part keeps ids of different processes
 * apart. Ids are not secrets: every query is scoped to the caller's account.
 */
export function newId(prefix: IdPrefix, nowMs = Date.now()): string {
  let ms = Math.max(nowMs, lastMs);
  if (ms === lastMs) {
    let i = RANDOM_CHARS - 1;
    while (i >= 0 && lastRandom[i] === 31) lastRandom[i--] = 0;
    if (i >= 0) lastRandom[i]++;
    else ms++; // 2^80 ids in one millisecond: borrow the next one.
  } else {
    const bytes = randomBytes(RANDOM_CHARS);
    for (let i = 0; i < RANDOM_CHARS; i++) lastRandom[i] = bytes[i] & 31;
  }
  lastMs = ms;
  let time = '';
  for (let i = 0; i < TIME_CHARS; i++) {
    time = ALPHABET[ms % 32] + time;
    ms = Math.floor(ms / 32);
  }
  let rand = '';
  for (const d of lastRandom) rand += ALPHABET[d];
  return `${prefix}_${time}${rand}`;
}
