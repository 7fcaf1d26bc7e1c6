import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../../../core/store/index.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How time passes for the store under test: TTLs, lease expiry and idle times follow it. */
export interface StoreTime {
  /** The store's clock, in ms. */
  now(): number;
  /** Lets `ms` pass for the store. */
  advance(ms: number): Promise<void>;
}

/** Real time, for a store whose clock cannot be injected (Redis expires by its own clock). */
export const realTime: StoreTime = { now: () => Date.now(), advance: (ms) => sleep(ms).then(() => {}) };

/** A clock that moves only when told: a MemoryStore built on it never races the machine. */
export function manualTime(startMs = 1_750_000_000_000): StoreTime {
  let nowMs = startMs;
  return {
    now: () => nowMs,
    advance: async (ms) => {
      nowMs += ms;
    },
  };
}

/**
 * Runs a timing scenario until one run is judgeable: `run` returns its assertions, or 'stalled'
 * when real time overran a TTL it depended on (a loaded machine can pause a process that long).
 * On an injected clock every run is judged; on real time a stall retries, with fresh keys.
 */
export async function judged(run: (attempt: number) => Promise<(() => void) | 'stalled'>): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const verdict = await run(attempt);
    if (verdict !== 'stalled') return verdict();
  }
  throw new Error('five runs in a row stalled past the TTL they depend on');
}

/**
 * The behaviour every Store implementation must have. Each implementation's test file calls
 * this with a factory that returns a fresh, isolated store, and the time that store runs on.
 */
export function runStoreContract(
  name: string,
  makeStore: () => Promise<Store>,
  time: StoreTime = realTime,
): void {
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
        await judged(async (n) => {
          const key = `ttl${n}`;
          const startedMs = time.now();
          await store.acquire([{ key, limit: 1 }], 'a', 300);
          const whileHeld = await store.acquire([{ key, limit: 1 }], 'b', 300);
          if (time.now() - startedMs >= 300) return 'stalled';
          await time.advance(400);
          const countAfter = await store.leaseCount(key);
          const next = await store.acquire([{ key, limit: 1 }], 'b', 10_000);
          return () => {
            expect(whileHeld).toMatchObject({ ok: false });
            expect(countAfter).toBe(0);
            expect(next).toEqual({ ok: true });
          };
        });
      });

      it('keeps a renewed lease alive past its first TTL', async () => {
        await judged(async (n) => {
          const key = `r${n}`;
          const startedMs = time.now();
          await store.acquire([{ key, limit: 1 }], 'a', 300);
          await time.advance(150);
          const renewingMs = time.now();
          const renewed = await store.renew([key], 'a', 300);
          if (time.now() - startedMs >= 300) return 'stalled';
          await time.advance(200); // past the first TTL, within the renewed one
          const count = await store.leaseCount(key);
          if (time.now() - renewingMs >= 300) return 'stalled';
          return () => {
            expect(renewed).toBe(true);
            expect(count).toBe(1);
          };
        });
      });

      it('refuses to renew a lease that already expired', async () => {
        await store.acquire([{ key: 'r', limit: 1 }], 'a', 100);
        await time.advance(200);
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

      it('expires a value on request, and a plain set afterwards clears that TTL', async () => {
        await store.set('e', 'x');
        await store.set('f', 'x');
        expect(await store.expire('e', 150)).toBe(true);
        expect(await store.expire('f', 150)).toBe(true);
        await store.set('f', 'y');
        await waitUntil(time, async () => (await store.get('e')) === null);
        expect(await store.get('f')).toBe('y');
        expect(await store.expire('e', 150)).toBe(false);
      });

      it('forgets a value after its TTL, and a plain set clears the TTL', async () => {
        await store.set('t', 'x', 100);
        await store.set('p', 'x', 100);
        await store.set('p', 'y');
        await time.advance(250);
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

      it('keeps ids, ranges and group reads right across many trims', async () => {
        await store.createGroup('long', 'g');
        await store.append('long', { n: 'first' });
        expect(await store.readGroup('long', 'g', 'c')).toHaveLength(1);
        const ids: string[] = [];
        for (let i = 0; i < 3000; i++) ids.push(await store.append('long', { n: String(i) }, 100));
        expect(await store.streamLength('long')).toBe(100);
        const all = await store.range('long');
        expect(all.map((e) => e.fields.n)).toEqual(Array.from({ length: 100 }, (_, i) => String(2900 + i)));
        expect(all.map((e) => e.id)).toEqual(ids.slice(2900));
        // A range starting in the trimmed part begins at the oldest entry kept.
        expect((await store.range('long', ids[10], ids[2905])).map((e) => e.fields.n)).toEqual([
          '2900',
          '2901',
          '2902',
          '2903',
          '2904',
          '2905',
        ]);
        const read = await store.readGroup('long', 'g', 'c', { count: 1000 });
        expect(read.map((e) => e.id)).toEqual(ids.slice(2900));
        expect(await store.trim('long', 10)).toBe(90);
        expect((await store.range('long')).map((e) => e.id)).toEqual(ids.slice(2990));
        await store.append('long', { n: 'last' });
        expect((await store.readGroup('long', 'g', 'c')).map((e) => e.fields.n)).toEqual(['last']);
      });

      it('forgets a stream after its TTL, which appends keep; expiring a missing key says so', async () => {
        let gone = 'gone';
        await judged(async (n) => {
          gone = `gone${n}`;
          await store.append(gone, { n: '1' });
          const startedMs = time.now();
          const expiring = await store.expire(gone, 300);
          await store.append(gone, { n: '2' });
          const length = await store.streamLength(gone);
          if (time.now() - startedMs >= 300) return 'stalled';
          return () => {
            expect(expiring).toBe(true);
            expect(length).toBe(2);
          };
        });
        await store.append('kept', { n: '1' });
        expect(await store.expire('missing', 200)).toBe(false);
        await waitUntil(time, async () => (await store.streamLength(gone)) === 0);
        expect(await store.range(gone)).toEqual([]);
        expect(await store.streamLength('kept')).toBe(1);
        // A new stream under the same name starts afresh, with no TTL.
        await store.append(gone, { n: 'again' });
        expect((await store.range(gone)).map((e) => e.fields.n)).toEqual(['again']);
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
        let stream = 'events';
        await judged(async (n) => {
          stream = `events${n}`;
          await store.createGroup(stream, 'g');
          await store.append(stream, { n: '1' });
          await store.append(stream, { n: '2' });
          const startedMs = time.now();
          const taken = await store.readGroup(stream, 'g', 'dead');
          // Not idle long enough yet: nobody may steal them.
          const early = await store.claimIdle(stream, 'g', 'alive', { minIdleMs: 300 });
          if (time.now() - startedMs >= 300) return 'stalled';
          return () => {
            expect(taken).toHaveLength(2);
            expect(early).toEqual([]);
          };
        });
        await time.advance(400);
        const claimed = await store.claimIdle(stream, 'g', 'alive', { minIdleMs: 300 });
        expect(claimed.map((e) => e.fields.n)).toEqual(['1', '2']);
        expect(
          await store.ack(
            stream,
            'g',
            claimed.map((e) => e.id),
          ),
        ).toBe(2);
        expect(await store.claimIdle(stream, 'g', 'other', { minIdleMs: 0 })).toEqual([]);
        expect(await store.readGroup(stream, 'g', 'other')).toEqual([]);
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
        const read = store.readGroup('s', 'g', 'c', { blockMs: 15_000 });
        await sleep(50);
        await store.append('s', { n: 'late' });
        const got = await read;
        expect(got.map((e) => e.fields.n)).toEqual(['late']);
        // Woken by the append, not by its block running out (a bound, not a speed).
        expect(Date.now() - started).toBeLessThan(15_000);
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

/** Lets the store's time pass in small steps until `cond` holds (a real-time bound fails a hang). */
async function waitUntil(time: StoreTime, cond: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await time.advance(20);
  }
}
