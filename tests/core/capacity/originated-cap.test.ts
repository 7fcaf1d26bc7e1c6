import { describe, expect, it } from 'vitest';
import { CallCapacity, ORIGINATED_KEY } from '../../../core/capacity/call-capacity.ts';
import { MemoryStore } from '../../../core/store/index.ts';

/** TELEPHONY_OUTBOUND_MAX_CONCURRENCY (MAX_CONCURRENT_CALLS): a slot only API-originated calls take. */
describe('the cap on API-originated calls', () => {
  const limits = { globalMax: 100, perCampaignMax: 100, ttlMs: 60_000 };

  it('refuses the originated call over it, naming the scope, and leaves inbound calls alone', async () => {
    const store = new MemoryStore();
    const capacity = new CallCapacity(store, limits);
    expect(await capacity.admit('out-1', { originatedMax: 2 })).toEqual({ ok: true });
    expect(await capacity.admit('out-2', { originatedMax: 2, campaignId: 'cmp-1' })).toEqual({ ok: true });
    expect(await capacity.admit('out-3', { originatedMax: 2 })).toEqual({
      ok: false,
      scope: 'originated',
      count: 2,
      limit: 2,
    });
    // An inbound call (no originatedMax) is not counted against it.
    expect(await capacity.admit('in-1')).toEqual({ ok: true });
    expect(await store.leaseCount(ORIGINATED_KEY)).toBe(2);
  });

  it('keeps the slot through the webhook re-admitting the call, and frees it with the call', async () => {
    const store = new MemoryStore();
    const capacity = new CallCapacity(store, limits);
    await capacity.admit('out-1', { originatedMax: 1 });
    // Core's call webhook admits the call again, knowing nothing of the originated cap.
    expect(await capacity.admit('out-1', { agentId: 'agt_1' })).toEqual({ ok: true });
    expect(await capacity.renew('out-1')).toBe(true);
    expect(await store.leaseCount(ORIGINATED_KEY)).toBe(1);
    expect((await capacity.admit('out-2', { originatedMax: 1 })).ok).toBe(false);
    expect(await capacity.release('out-1')).toBe(true);
    expect(await store.leaseCount(ORIGINATED_KEY)).toBe(0);
    expect(await capacity.admit('out-2', { originatedMax: 1 })).toEqual({ ok: true });
  });
});
