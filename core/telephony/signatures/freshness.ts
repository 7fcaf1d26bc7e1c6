/**
 * Replay protection shared by the timestamped schemes (Jambonz, Telnyx): a signed timestamp must
 * lie within a tolerance of our clock, in either direction.
 */

/** Default replay window: 5 minutes, what Jambonz's and Telnyx's own SDKs use. */
export const DEFAULT_TOLERANCE_SEC = 300;

/** Largest timestamp accepted (12 digits, far beyond any real clock); bounds parsing work. */
export const MAX_UNIX_SECONDS = 999_999_999_999;
const UNIX_SECONDS = /^\d{1,12}$/;

/** Parses a decimal unix-seconds string ("1700000000"); anything else is null. */
export function parseUnixSeconds(text: string): number | null {
  return typeof text === 'string' && UNIX_SECONDS.test(text) ? Number(text) : null;
}

/** The current time in whole unix seconds. */
export function nowUnixSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * Why `tSec` is outside `nowSec ± toleranceSec`, or null when it is fresh. A clock or tolerance
 * that is not a finite, non-negative number fails closed (reported as expired).
 */
export function staleness(tSec: number, nowSec: number, toleranceSec: number): 'expired' | 'future' | null {
  if (!Number.isFinite(nowSec) || !Number.isFinite(toleranceSec) || toleranceSec < 0) return 'expired';
  if (tSec < nowSec - toleranceSec) return 'expired';
  if (tSec > nowSec + toleranceSec) return 'future';
  return null;
}
