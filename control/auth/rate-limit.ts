import { randomUUID } from 'node:crypto';
import type { Store } from '../../core/store/index.ts';

export type RateLimitResult =
  | { ok: true }
  /** Over the limit: retry after this many whole seconds (the rest of the window, at least 1). */
  | { ok: false; retryAfterSec: number };

/**
 * A fixed-window request counter per API key, kept in the Store so every control node counts
 * against the same limit. It rides on the Store's leases: each request takes one slot of a
 * semaphore whose limit is the per-window budget, with a TTL that ends with the window. Redis
 * takes the slot atomically (one Lua call), so racing nodes never overshoot.
 *
 * Windows alternate between two semaphore names (`…:0`, `…:1`): by the time a name comes round
 * again its old slots have expired and are pruned, so a key costs at most two semaphores, in
 * MemoryStore as in Redis, without a sweeper.
 */
export class FixedWindowRateLimiter {
  constructor(
    private readonly store: Store,
    readonly limit: number,
    readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts one request for `subject` (an API key id). */
  async take(subject: string): Promise<RateLimitResult> {
    const now = this.now();
    const window = Math.floor(now / this.windowMs);
    const remainingMs = (window + 1) * this.windowMs - now;
    const claim = { key: `ratelimit:${subject}:${window % 2}`, limit: this.limit };
    const result = await this.store.acquire([claim], randomUUID(), remainingMs);
    if (result.ok) return { ok: true };
    return { ok: false, retryAfterSec: Math.max(1, Math.ceil(remainingMs / 1000)) };
  }
}
