import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { FixedWindowRateLimiter } from '../../control/auth/index.ts';
import { MemoryStore, RedisStore, type Store } from '../../core/store/index.ts';

const redisUrl = inject('redisUrl');
const WINDOW_MS = 60_000;

/** A clock the test moves: 15 s into some window. */
function clockAt(ms: number) {
  const clock = { now: ms };
  return { clock, read: () => clock.now };
}

function runRateLimiterSuite(makeStore: () => Promise<Store>) {
  const stores: Store[] = [];
  const fresh = async () => {
    const s = await makeStore();
    stores.push(s);
    return s;
  };
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
  });

  it('admits `limit` requests in a window, then refuses until the window ends', async () => {
    const store = await fresh();
    const start = Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS + 15_000;
    const { clock, read } = clockAt(start);
    const limiter = new FixedWindowRateLimiter(store, 3, WINDOW_MS, read);
    for (let i = 0; i < 3; i++) expect(await limiter.take('key_a')).toEqual({ ok: true });
    expect(await limiter.take('key_a')).toEqual({ ok: false, retryAfterSec: 45 });
    clock.now = start + 44_500;
    expect(await limiter.take('key_a')).toEqual({ ok: false, retryAfterSec: 1 });
    clock.now = start + 45_000; // the next window
    expect(await limiter.take('key_a')).toEqual({ ok: true });
  });

  it('counts each subject apart', async () => {
    const store = await fresh();
    const { read } = clockAt(Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS + 1000);
    const limiter = new FixedWindowRateLimiter(store, 1, WINDOW_MS, read);
    expect((await limiter.take('key_a')).ok).toBe(true);
    expect((await limiter.take('key_a')).ok).toBe(false);
    expect((await limiter.take('key_b')).ok).toBe(true);
  });

  it('holds one limit across nodes sharing the Store', async () => {
    const store = await fresh();
    const { read } = clockAt(Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS + 5000);
    const nodes = [0, 1, 2].map(() => new FixedWindowRateLimiter(store, 4, WINDOW_MS, read));
    // 9 requests spread over three nodes: each node alone sees 3, under the limit of 4.
    const results = await Promise.all(Array.from({ length: 9 }, (_, i) => nodes[i % 3].take('key_shared')));
    expect(results.filter((r) => r.ok)).toHaveLength(4);
  });
}

describe('FixedWindowRateLimiter on MemoryStore', () => {
  runRateLimiterSuite(async () => new MemoryStore());
});

describe.skipIf(!redisUrl)('FixedWindowRateLimiter on Redis', () => {
  runRateLimiterSuite(() => RedisStore.connect(redisUrl!, { prefix: `t:${randomUUID()}:` }));
});
