import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { CallCapacity, type CapacityLimits, keepLeasesAlive } from '../../../core/capacity/index.ts';
import { MemoryStore, RedisStore, type Store } from '../../../core/store/index.ts';
import { judged, manualTime, realTime, type StoreTime } from '../store/store.contract.ts';

const redisUrl = inject('redisUrl');

/**
 * One "node" of a deployment: its own store connection onto the shared state. MemoryStore is
 * one process, so its nodes share the instance; Redis nodes get their own connections. `time`
 * is the clock the slots expire by: injected for MemoryStore, Redis's own (real) for Redis.
 */
interface Cluster {
  node(): Promise<Store>;
  time: StoreTime;
  close(): Promise<void>;
}

/** Counts finished renewals, so a test can let time pass one renewal at a time. */
class CountingCapacity extends CallCapacity {
  renewed = 0;
  override async renew(callId: string): Promise<boolean> {
    try {
      return await super.renew(callId);
    } finally {
      this.renewed++;
    }
  }
}

/** Polls until `check` holds; the bound only turns a hang into a failure. */
async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const started = performance.now();
  while (!check()) {
    if (performance.now() - started > timeoutMs) throw new Error(`${what}: not reached`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function describeCapacity(name: string, makeCluster: () => Promise<Cluster>): void {
  describe(`CallCapacity on ${name}`, () => {
    let cluster: Cluster;
    let store: Store;
    let time: StoreTime;
    const capacity = (limits: Partial<CapacityLimits> = {}, on = store) =>
      new CountingCapacity(on, { globalMax: 100, perCampaignMax: 100, ttlMs: 10_000, ...limits });

    beforeEach(async () => {
      cluster = await makeCluster();
      store = await cluster.node();
      time = cluster.time;
    });
    afterEach(async () => {
      await cluster.close();
    });

    it('admits exactly the global limit out of 300 concurrent calls', async () => {
      const cap = capacity({ globalMax: 100 });
      const results = await Promise.all(
        Array.from({ length: 300 }, (_, i) => cap.admit(`call-${i}`, { agentId: 'a1' })),
      );
      const admitted = results.filter((r) => r.ok);
      expect(admitted).toHaveLength(100);
      for (const r of results.filter((r) => !r.ok)) {
        expect(r).toEqual({ ok: false, scope: 'global', count: 100, limit: 100 });
      }
      expect((await cap.counts()).global).toEqual({ count: 100, limit: 100 });
    });

    it('holds a campaign to its limit while other campaigns still get in', async () => {
      const cap = capacity({ globalMax: 50, perCampaignMax: 3 });
      const c1 = await Promise.all(
        Array.from({ length: 10 }, (_, i) => cap.admit(`c1-${i}`, { campaignId: 'c1' })),
      );
      expect(c1.filter((r) => r.ok)).toHaveLength(3);
      expect(c1.find((r) => !r.ok)).toEqual({ ok: false, scope: 'campaign', count: 3, limit: 3 });
      expect(await cap.admit('c2-0', { campaignId: 'c2' })).toEqual({ ok: true });
      expect(await cap.admit('no-campaign', {})).toEqual({ ok: true });
      const counts = await cap.counts({ campaigns: ['c1', 'c2', 'c3'] });
      expect(counts.global.count).toBe(5);
      expect(counts.campaigns).toEqual({
        c1: { count: 3, limit: 3 },
        c2: { count: 1, limit: 3 },
        c3: { count: 0, limit: 3 },
      });
    });

    it('applies a campaign override limit', async () => {
      const cap = capacity({ perCampaignMax: 10 });
      expect(await cap.admit('x1', { campaignId: 'small', campaignMax: 1 })).toEqual({ ok: true });
      expect(await cap.admit('x2', { campaignId: 'small', campaignMax: 1 })).toEqual({
        ok: false,
        scope: 'campaign',
        count: 1,
        limit: 1,
      });
    });

    it('holds an agent to its own limit and takes nothing when it is full', async () => {
      const cap = capacity({ globalMax: 50, perCampaignMax: 50 });
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          cap.admit(`a-${i}`, { agentId: 'agent-1', agentMax: 2, campaignId: 'c1' }),
        ),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(2);
      expect(results.find((r) => !r.ok)).toEqual({ ok: false, scope: 'agent', count: 2, limit: 2 });
      // All-or-nothing: refused calls took no global or campaign slot.
      const counts = await cap.counts({ campaigns: ['c1'], agents: [{ id: 'agent-1', max: 2 }, 'agent-2'] });
      expect(counts.global.count).toBe(2);
      expect(counts.campaigns.c1!.count).toBe(2);
      expect(counts.agents).toEqual({
        'agent-1': { count: 2, limit: 2 },
        'agent-2': { count: 0, limit: null },
      });
      // Without agentMax the agent is not limited.
      expect(await cap.admit('unlimited', { agentId: 'agent-1', campaignId: 'c1' })).toEqual({ ok: true });
    });

    it('releases a call once when every end path and several nodes release it at once', async () => {
      const nodes = await Promise.all([cluster.node(), cluster.node(), cluster.node()]);
      const caps = nodes.map((n) => capacity({}, n));
      const opts = { agentId: 'ag', agentMax: 5, campaignId: 'camp' };
      expect(await caps[0]!.admit('call-a', opts)).toEqual({ ok: true });
      expect(await caps[0]!.admit('call-b', opts)).toEqual({ ok: true });

      // status callback, stream stop, socket close, timeout, error — spread over three nodes
      const released = await Promise.all(
        Array.from({ length: 15 }, (_, i) => caps[i % caps.length]!.release('call-a')),
      );
      expect(released.filter(Boolean)).toHaveLength(1);

      const counts = await caps[2]!.counts({ campaigns: ['camp'], agents: ['ag'] });
      expect(counts.global.count).toBe(1);
      expect(counts.campaigns.camp!.count).toBe(1);
      expect(counts.agents.ag!.count).toBe(1);
      // The other call still holds its slots and can be renewed from any node.
      expect(await caps[1]!.renew('call-b')).toBe(true);
      expect(await caps[1]!.renew('call-a')).toBe(false);
      expect(await caps[2]!.release('call-a')).toBe(false);
    });

    it('lets an unrenewed call lapse after the TTL, and release afterwards is harmless', async () => {
      const cap = capacity({ globalMax: 1, ttlMs: 300 });
      let short = '';
      await judged(async (n) => {
        short = `short-${n}`;
        const startedMs = time.now();
        const admitted = await cap.admit(short, { campaignId: 'c' });
        const blocked = await cap.admit(`blocked-${n}`, {});
        if (time.now() - startedMs >= 300) {
          await Promise.all([cap.release(short), cap.release(`blocked-${n}`)]);
          return 'stalled';
        }
        return () => {
          expect(admitted).toEqual({ ok: true });
          expect(blocked).toMatchObject({ ok: false, scope: 'global' });
        };
      });
      await time.advance(400);
      expect((await cap.counts({ campaigns: ['c'] })).global.count).toBe(0);
      expect(await cap.renew(short)).toBe(false);
      expect(await cap.release(short)).toBe(false);
      expect(await cap.release(short)).toBe(false);
      expect(await cap.admit('next', {})).toEqual({ ok: true });
      expect((await cap.counts()).global.count).toBe(1);
    });

    it('keeps a renewed call past its TTL and stops renewing when told', async () => {
      const ttlMs = 600;
      const cap = capacity({ globalMax: 1, ttlMs });
      await judged(async (n) => {
        const callId = `live-${n}`;
        expect(await cap.admit(callId, {})).toEqual({ ok: true });
        const lost: string[] = [];
        const keeper = keepLeasesAlive(cap, callId, { onLost: (id) => lost.push(id) });
        // More than a TTL passes for the store, one renewal at a time.
        const startedMs = time.now();
        let renewedMs = startedMs;
        let longestGapMs = 0;
        while (time.now() - startedMs < 2 * ttlMs) {
          const before = cap.renewed;
          await until(() => cap.renewed > before || lost.length > 0, 'a renewal');
          longestGapMs = Math.max(longestGapMs, time.now() - renewedMs);
          renewedMs = time.now();
          await time.advance(ttlMs / 4);
        }
        const count = (await cap.counts()).global.count;
        longestGapMs = Math.max(longestGapMs, time.now() - renewedMs);
        await keeper.stop();
        await keeper.stop();
        if (longestGapMs >= ttlMs) {
          // The process stalled longer than a TTL between renewals: the slot may rightly lapse.
          await cap.release(callId);
          return 'stalled';
        }
        await time.advance(ttlMs + 100);
        const afterStop = (await cap.counts()).global.count;
        return () => {
          expect(count).toBe(1);
          expect(afterStop).toBe(0);
          expect(lost).toEqual([]);
        };
      });
    });

    it('tells the keeper when the call was released elsewhere', async () => {
      const cap = capacity({ ttlMs: 90 });
      await cap.admit('gone', {});
      const lost: string[] = [];
      const keeper = keepLeasesAlive(cap, 'gone', { onLost: (id) => lost.push(id) });
      expect(await capacity({ ttlMs: 90 }, await cluster.node()).release('gone')).toBe(true);
      await until(() => lost.length > 0, 'keeper told');
      expect(lost).toEqual(['gone']);
      await keeper.stop();
    });

    it('treats a re-admit of a live call as a renewal, not a second slot', async () => {
      const cap = capacity({ globalMax: 2 });
      expect(await cap.admit('same', { campaignId: 'c' })).toEqual({ ok: true });
      expect(await cap.admit('same', { campaignId: 'c' })).toEqual({ ok: true });
      expect((await cap.counts({ campaigns: ['c'] })).global.count).toBe(1);
      expect(await cap.release('same')).toBe(true);
      expect((await cap.counts({ campaigns: ['c'] })).campaigns.c!.count).toBe(0);
    });

    it('rejects limits and ids that make no sense', () => {
      expect(() => capacity({ globalMax: -1 })).toThrow(/globalMax/);
      expect(() => capacity({ ttlMs: 0 })).toThrow(/ttlMs/);
      const cap = capacity();
      return Promise.all([
        expect(cap.admit('', {})).rejects.toThrow(/callId/),
        expect(cap.admit('x', { agentMax: 2 })).rejects.toThrow(/agentId/),
      ]);
    });
  });
}

describeCapacity('MemoryStore', async () => {
  const time = manualTime();
  const store = new MemoryStore({ now: time.now });
  return { node: async () => store, time, close: () => store.close() };
});

describe.skipIf(!redisUrl)('against a real redis-server', () => {
  describeCapacity('RedisStore', async () => {
    // A fresh prefix per test keeps tests apart on the one shared server; every node shares it.
    const prefix = `t:${randomUUID()}:`;
    const opened: RedisStore[] = [];
    return {
      time: realTime,
      async node() {
        const store = await RedisStore.connect(redisUrl!, { prefix });
        opened.push(store);
        return store;
      },
      close: async () => {
        await Promise.all(opened.map((s) => s.close()));
      },
    };
  });
});
