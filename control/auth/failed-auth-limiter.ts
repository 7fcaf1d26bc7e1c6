/** What {@link FailedAuthLimiter.check} says about an address. */
export type FailedAuthCheck = { ok: true } | { ok: false; retryAfterSec: number };

/**
 * Counts failed authentications (no key, a malformed, unknown or revoked key) per client
 * address in fixed windows; past `limit` in a window the address gets 429 until the window ends,
 * before its key is even looked up. Kept in memory, per control node: the check sits in front of
 * every request, so it must cost no round trip, and a guesser spread over N nodes still gets at
 * most N × limit tries a window. The whole table is dropped when a window ends, and a window
 * tracks at most `maxAddresses` addresses (further ones go uncounted rather than grow memory).
 */
export class FailedAuthLimiter {
  private window = Number.NaN;
  private readonly failures = new Map<string, number>();

  constructor(
    readonly limit = 20,
    readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
    readonly maxAddresses = 100_000,
  ) {}

  /** Whether `address` may try to authenticate now. */
  check(address: string): FailedAuthCheck {
    const remainingMs = this.roll();
    if ((this.failures.get(address) ?? 0) < this.limit) return { ok: true };
    return { ok: false, retryAfterSec: Math.max(1, Math.ceil(remainingMs / 1000)) };
  }

  /** Counts one failed authentication from `address`. */
  fail(address: string): void {
    this.roll();
    const count = this.failures.get(address);
    if (count === undefined && this.failures.size >= this.maxAddresses) return;
    this.failures.set(address, (count ?? 0) + 1);
  }

  /** Starts a new window when the clock has left the current one; returns the ms left in it. */
  private roll(): number {
    const now = this.now();
    const window = Math.floor(now / this.windowMs);
    if (window !== this.window) {
      this.window = window;
      this.failures.clear();
    }
    return (window + 1) * this.windowMs - now;
  }
}
