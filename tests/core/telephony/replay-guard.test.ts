import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { MemoryStore, RedisStore, type Store } from '../../../core/store/index.ts';
import { ReplayGuard } from '../../../core/telephony/webhooks/replay-guard.ts';
import { judged } from '../store/store.contract.ts';

const redisUrl = inject('redisUrl');
const stores: [string, () => Promise<Store>][] = [['MemoryStore', async () => new MemoryStore()]];
if (redisUrl) {
  stores.push([
    'RedisStore',
    () => RedisStore.connect(redisUrl, { prefix: `replays:${randomUUID()}:` }) as Promise<Store>,
  ]);
}

describe.each(stores)('ReplayGuard on %s', (_name, makeStore) => {
  const opened: Store[] = [];
  const open = async () => {
    const store = await makeStore();
    opened.push(store);
    return store;
  };
  afterAll(async () => {
    for (const store of opened) await store.close();
  });

  it('remembers an ended call under our id and the provider’s, for the window it was given', async () => {
    const store = await open();
    const ttls: (number | undefined)[] = [];
    const recording = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === 'set')
          return (key: string, value: string, ttlMs?: number) => {
            ttls.push(ttlMs);
            return target.set(key, value, ttlMs);
          };
        const value = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const guard = new ReplayGuard(recording, 86_400_000);
    const ids = {
      callId: `call_${randomUUID()}`,
      provider: 'twilio' as const,
      providerCallId: `CA${randomUUID()}`,
    };
    expect(await guard.hasEnded(ids)).toBe(false);
    await guard.markEnded(ids);
    expect(ttls).toEqual([86_400_000, 86_400_000]);
    expect(await guard.hasEnded(ids)).toBe(true);
    // Either id alone is enough to recognise it.
    expect(await guard.hasEnded({ callId: ids.callId })).toBe(true);
    expect(
      await guard.hasEnded({ callId: 'other', provider: 'twilio', providerCallId: ids.providerCallId }),
    ).toBe(true);
    // The same sid from another provider is another call.
    expect(
      await guard.hasEnded({ callId: 'other', provider: 'telnyx', providerCallId: ids.providerCallId }),
    ).toBe(false);
  });

  it('lets exactly one of many concurrent claims of a delivery win, and gives a claim back on undo', async () => {
    const guard = new ReplayGuard(await open(), 60_000);
    const name = `delivery:${randomUUID()}`;
    const claims = await Promise.all(Array.from({ length: 10 }, () => guard.claim(name)));
    expect(claims.filter((c) => c !== null)).toHaveLength(1);
    await claims.find((c) => c !== null)!.undo();
    expect(await guard.claim(name)).not.toBeNull();
    expect(await guard.claim(name)).toBeNull();
  });

  it('forgets ended calls and claims once the window has passed', async () => {
    const guard = new ReplayGuard(await open(), 300);
    let ids = { callId: '' };
    let name = '';
    // Within the window: judged only when the process did not stall past it (real time).
    await judged(async () => {
      ids = { callId: `call_${randomUUID()}` };
      name = `delivery:${randomUUID()}`;
      const startedMs = Date.now();
      await guard.markEnded(ids);
      const first = await guard.claim(name);
      const second = await guard.claim(name);
      const ended = await guard.hasEnded(ids);
      if (Date.now() - startedMs >= 300) return 'stalled';
      return () => {
        expect(first).not.toBeNull();
        expect(second).toBeNull();
        expect(ended).toBe(true);
      };
    });
    while (await guard.hasEnded(ids)) await Bun.sleep(10);
    let again = await guard.claim(name);
    while (again === null) {
      await Bun.sleep(10);
      again = await guard.claim(name);
    }
    expect(again).not.toBeNull();
  });

  it('refuses a window that is not a positive number of milliseconds', async () => {
    const store = await open();
    expect(() => new ReplayGuard(store, 0)).toThrow(RangeError);
    expect(() => new ReplayGuard(store, Number.NaN)).toThrow(RangeError);
  });
});
