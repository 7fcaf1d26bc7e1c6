import { describe, expect, it } from 'vitest';
import { StoreHealthProbe } from '../../../core/store/health-probe.ts';
import { MemoryStore, type Store, type StoreHealth } from '../../../core/store/index.ts';

/** A Store whose health answers as the test says: up, down, or never. */
function scriptedStore(): Store & { answer: () => Promise<StoreHealth> } {
  const store = new MemoryStore() as MemoryStore & { answer: () => Promise<StoreHealth> };
  store.answer = async () => ({ ok: true, kind: 'memory' });
  store.health = () => store.answer();
  return store;
}

describe('StoreHealthProbe', () => {
  it('answers from its last probe: up, down, then stale when probes stop coming', async () => {
    const store = scriptedStore();
    let now = 1_000;
    // Long interval: the test runs each probe by hand.
    const probe = new StoreHealthProbe(store, { intervalMs: 60_000, staleAfterMs: 3_000, now: () => now });
    expect(probe.current()).toMatchObject({ ok: false, error: 'not probed yet' });
    await probe.ready();
    expect(probe.current()).toMatchObject({ ok: true, ageMs: 0 });
    now += 2_000;
    expect(probe.current()).toMatchObject({ ok: true, ageMs: 2_000 });
    now += 1_001;
    expect(probe.current()).toMatchObject({ ok: false, error: 'last probe 3001 ms ago' });

    store.answer = async () => ({ ok: false, kind: 'memory', error: 'gone' });
    await probe.probe();
    expect(probe.ok).toBe(false);
    expect(probe.current()).toMatchObject({ ok: false, error: 'gone' });
    store.answer = async () => {
      throw new Error('exploded');
    };
    await probe.probe();
    expect(probe.current()).toMatchObject({ ok: false, error: 'exploded' });
    probe.stop();
  });

  it('counts a probe that gets no answer within its timeout as down', async () => {
    const store = scriptedStore();
    store.answer = () => new Promise(() => {});
    const probe = new StoreHealthProbe(store, { intervalMs: 60_000, timeoutMs: 20 });
    await probe.ready();
    expect(probe.current()).toMatchObject({ ok: false, error: 'no answer within 20 ms' });
    probe.stop();
  });
});
