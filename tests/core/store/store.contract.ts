import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../../../core/store/index.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The behaviour every Store implementation must have. Each implementation's test file calls
 * this with a factory that returns a fresh, isolated store.
 */
export function runStoreContract(name: string, makeStore: () => Promise<Store>): void {
  describe(`${name} (Store contract)`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await makeStore();
    });
    afterEach(async () => {
      await store.close();
    });

    describe('leases', () => {
      it('grants up to the limit and reports the count', async () => {
        expect(await store.acquire([{ key: 'g', limit: 2 }], 'a', 10_000)).toEqual({ ok: true });
        expect(await store.acquire([{ key: 'g', limit: 2 }], 'b', 10_000)).toEqual({ ok: true });
        expect(await store.acquire([{ key: 'g', limit: 2 }], 'c', 10_000)).toEqual({
          ok: false,
          key: 'g',
          count: 2,
          limit: 2,
        });
        expect(await store.leaseCount('g')).toBe(2);
      });

      it('takes all claims or none', async () => {
        await store.acquire([{ key: 'campaign', limit: 1 }], 'x', 10_000);
        const res = await store.acquire(
          [
            { key: 'global', limit: 10 },
            { key: 'campaign', limit: 1 },
          ],
          'y',
          10_000,
        );
        expect(res).toMatchObject({ ok: false, key: 'campaign' });
        expect(await store.leaseCount('global')).toBe(0);
      });

      it('counts a holder that acquires again once', async () => {
        await store.acquire([{ key: 'g', limit: 1 }], 'a', 10_000);
        expect(await store.acquire([{ key: 'g', limit: 1 }], 'a', 10_000)).toEqual({ ok: true });
        expect(await store.leaseCount('g')).toBe(1);
      });

      it('grants exactly 50 of 1,000 concurrent acquires on a limit of 50', async () => {
        const results = await Promise.all(
          Array.from({ length: 1000 }, (_, i) =>
            store.acquire([{ key: 'race', limit: 50 }], `h${i}`, 30_000),
          ),
        );
        expect(results.filter((r) => r.ok)).toHaveLength(50);
        expect(await store.leaseCount('race')).toBe(50);
      });

      it('never lets either key of a two-key acquire pass its limit under a race', async () => {
        const claims = [
          { key: 'global', limit: 60 },
          { key: 'campaign:c1', limit: 50 },
        ];
        let sampling = true;
        const seen = { global: 0, campaign: 0 };
        const sampler = (async () => {
          while (sampling) {
            const [g, c] = await Promise.all([store.leaseCount('global'), store.leaseCount('campaign:c1')]);
            seen.global = Math.max(seen.global, g);
            seen.campaign = Math.max(seen.campaign, c);
            await sleep(0);
          }
        })();
        const results = await Promise.all(
          Array.from({ length: 1000 }, (_, i) =>
            // Every fourth caller needs only the global slot (a call outside the campaign).
            store.acquire(i % 4 === 0 ? [claims[0]!] : claims, `h${i}`, 30_000),
          ),
        );
        sampling = false;
        await sampler;
        const granted = results.filter((r) => r.ok).length;
        const global = await store.leaseCount('global');
        const campaign = await store.leaseCount('campaign:c1');
        expect(global).toBe(60);
        expect(campaign).toBeLessThanOrEqual(50);
        expect(granted).toBe(global);
        expect(seen.global).toBeLessThanOrEqual(60);
        expect(seen.campaign).toBeLessThanOrEqual(50);
      });

      it('drops a lease that is not renewed after its TTL', async () => {
        await store.acquire([{ key: 'ttl', limit: 1 }], 'a', 150);
        expect(await store.acquire([{ key: 'ttl', limit: 1 }], 'b', 150)).toMatchObject({ ok: false });
        await sleep(300);
        expect(await store.leaseCount('ttl')).toBe(0);
        expect(await store.acquire([{ key: 'ttl', limit: 1 }], 'b', 10_000)).toEqual({ ok: true });
      });

      it('keeps a renewed lease alive past its first TTL', async () => {
        await store.acquire([{ key: 'r', limit: 1 }], 'a', 200);
        await sleep(100);
        expect(await store.renew(['r'], 'a', 500)).toBe(true);
        await sleep(250);
        expect(await store.leaseCount('r')).toBe(1);
      });

      it('refuses to renew a lease that already expired', async () => {
        await store.acquire([{ key: 'r', limit: 1 }], 'a', 100);
        await sleep(200);
        expect(await store.renew(['r'], 'a', 500)).toBe(false);
        expect(await store.leaseCount('r')).toBe(0);
      });

      it('treats a second release as harmless', async () => {
        await store.acquire(
          [
            { key: 'g', limit: 5 },
            { key: 'c', limit: 5 },
          ],
          'a',
          10_000,
        );
        await store.acquire([{ key: 'g', limit: 5 }], 'b', 10_000);
        expect(await store.release(['g', 'c'], 'a')).toBe(2);
        expect(await store.release(['g', 'c'], 'a')).toBe(0);
        expect(await store.leaseCount('g')).toBe(1);
        expect(await store.leaseCount('c')).toBe(0);
      });
    });

    describe('kv', () => {
      it('sets, gets, deletes', async () => {
        await store.set('k', 'v1');
        expect(await store.get('k')).toBe('v1');
        await store.set('k', 'v2');
        expect(await store.getMany(['k', 'missing'])).toEqual(['v2', null]);
        expect(await store.del('k')).toBe(true);
        expect(await store.del('k')).toBe(false);
        expect(await store.get('k')).toBeNull();
      });

      it('forgets a value after its TTL, and a plain set clears the TTL', async () => {
        await store.set('t', 'x', 100);
        await store.set('p', 'x', 100);
        await store.set('p', 'y');
        await sleep(250);
        expect(await store.get('t')).toBeNull();
        expect(await store.get('p')).toBe('y');
      });
    });

    describe('streams', () => {
      it('appends with increasing ids and reads ranges in order', async () => {
        const ids: string[] = [];
        for (let i = 0; i < 5; i++) ids.push(await store.append('s', { n: String(i) }));
        expect([...ids].sort(compareIds)).toEqual(ids);
        expect(new Set(ids).size).toBe(5);
        const all = await store.range('s');
        expect(all.map((e) => e.fields.n)).toEqual(['0', '1', '2', '3', '4']);
        expect((await store.range('s', ids[1], ids[3])).map((e) => e.fields.n)).toEqual(['1', '2', '3']);
        expect((await store.range('s', '-', '+', 2)).map((e) => e.fields.n)).toEqual(['0', '1']);
        expect(await store.streamLength('s')).toBe(5);
      });

      it('trims the oldest entries, on append and on request', async () => {
        for (let i = 0; i < 10; i++) await store.append('s', { n: String(i) }, 4);
        expect((await store.range('s')).map((e) => e.fields.n)).toEqual(['6', '7', '8', '9']);
        expect(await store.trim('s', 2)).toBe(2);
        expect((await store.range('s')).map((e) => e.fields.n)).toEqual(['8', '9']);
      });

      it('shares a group between consumers and fans out to every group', async () => {
        await store.createGroup('s', 'recorder');
        await store.createGroup('s', 'recorder'); // idempotent
        await store.createGroup('s', 'dispatcher');
        for (let i = 0; i < 6; i++) await store.append('s', { n: String(i) });
        const a = await store.readGroup('s', 'recorder', 'a', { count: 4 });
        const b = await store.readGroup('s', 'recorder', 'b', { count: 4 });
        expect(a.map((e) => e.fields.n)).toEqual(['0', '1', '2', '3']);
        expect(b.map((e) => e.fields.n)).toEqual(['4', '5']);
        const d = await store.readGroup('s', 'dispatcher', 'x', { count: 100 });
        expect(d).toHaveLength(6);
      });

      it("lets a group created at '$' see only new entries", async () => {
        await store.append('s', { n: 'old' });
        await store.createGroup('s', 'g', '$');
        await store.append('s', { n: 'new' });
        expect((await store.readGroup('s', 'g', 'c')).map((e) => e.fields.n)).toEqual(['new']);
      });

      it('hands entries of a consumer that died before ack to another after the idle time', async () => {
        await store.createGroup('events', 'g');
        await store.append('events', { n: '1' });
        await store.append('events', { n: '2' });
        const taken = await store.readGroup('events', 'g', 'dead');
        expect(taken).toHaveLength(2);
        // Not idle long enough yet: nobody may steal them.
        expect(await store.claimIdle('events', 'g', 'alive', { minIdleMs: 200 })).toEqual([]);
        await sleep(300);
        const claimed = await store.claimIdle('events', 'g', 'alive', { minIdleMs: 200 });
        expect(claimed.map((e) => e.fields.n)).toEqual(['1', '2']);
        expect(
          await store.ack(
            'events',
            'g',
            claimed.map((e) => e.id),
          ),
        ).toBe(2);
        await sleep(50);
        expect(await store.claimIdle('events', 'g', 'other', { minIdleMs: 0 })).toEqual([]);
        expect(await store.readGroup('events', 'g', 'other')).toEqual([]);
      });

      it('never redelivers acked entries', async () => {
        await store.createGroup('s', 'g');
        const id = await store.append('s', { n: '1' });
        const [entry] = await store.readGroup('s', 'g', 'c');
        expect(entry?.id).toBe(id);
        expect(await store.ack('s', 'g', [id])).toBe(1);
        expect(await store.ack('s', 'g', [id])).toBe(0);
        expect(await store.readGroup('s', 'g', 'c')).toEqual([]);
        expect(await store.claimIdle('s', 'g', 'c2', { minIdleMs: 0 })).toEqual([]);
      });

      it('wakes a blocked group read when an entry arrives', async () => {
        await store.createGroup('s', 'g');
        const started = Date.now();
        const read = store.readGroup('s', 'g', 'c', { blockMs: 3000 });
        await sleep(50);
        await store.append('s', { n: 'late' });
        const got = await read;
        expect(got.map((e) => e.fields.n)).toEqual(['late']);
        expect(Date.now() - started).toBeLessThan(2000);
      });

      it('returns nothing from a blocked read that times out', async () => {
        await store.createGroup('s', 'g');
        const started = Date.now();
        expect(await store.readGroup('s', 'g', 'c', { blockMs: 150 })).toEqual([]);
        expect(Date.now() - started).toBeGreaterThanOrEqual(100);
      });
    });

    describe('pub/sub', () => {
      it('delivers to every subscriber until it unsubscribes', async () => {
        const a: string[] = [];
        const b: string[] = [];
        const unsubA = await store.subscribe('call:1', (m) => a.push(m));
        const unsubB = await store.subscribe('call:1', (m) => b.push(m));
        expect(await store.publish('call:1', 'hangup')).toBeGreaterThanOrEqual(1);
        await waitFor(() => a.length === 1 && b.length === 1);
        await unsubA();
        await store.publish('call:1', 'say');
        await waitFor(() => b.length === 2);
        expect(a).toEqual(['hangup']);
        expect(b).toEqual(['hangup', 'say']);
        await unsubB();
        expect(await store.publish('call:1', 'nobody')).toBe(0);
      });
    });

    it('reports its health', async () => {
      const h = await store.health();
      expect(h.ok).toBe(true);
      expect(h.kind).toBe(store.kind);
    });
  });
}

function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am === bm ? as - bs : am - bm;
}

async function waitFor(cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}
