import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { campaignKey } from '../../core/capacity/call-capacity.ts';
import { driveJambonzCalls, type JambonzOutcome, type Platform, startPlatform } from './platform.ts';
import { type Backing, eventually, type Json, makeAccount, postgresAndRedis } from './support.ts';

const redisUrl = inject('redisUrl');
const postgresUrl = inject('postgresUrl');

const CONTACTS = 200;
const CONCURRENCY = 10;
const CALLS_PER_SECOND = 5;

/**
 * The issue's campaign check, on PostgreSQL and Redis with a real core: 200 contacts, 10 at
 * once, 5 calls a second, against a fake Jambonz that rings, answers through core's webhook and
 * hangs up after a random time (or reports busy / no answer, which are retried once). Halfway
 * through, control is stopped and a new one started on the same database.
 */
describe.skipIf(!redisUrl || !postgresUrl)('a 200-contact campaign on PostgreSQL and Redis', () => {
  let backing: Backing;
  let p: Platform;

  beforeAll(async () => {
    backing = await postgresAndRedis(postgresUrl!, redisUrl!);
    p = await startPlatform(backing);
  });

  afterAll(async () => {
    await p?.close();
    await backing?.close();
  });

  it('never has more than 10 live, dials no contact twice across a restart, and its counts add up', async () => {
    const { key } = await makeAccount(p.control, 'campaigner');
    const agent = await p.api('POST', '/v1/agents', { key, body: { name: 'Caller', brain: 'echo' } });
    const numbers = Array.from({ length: CONTACTS }, (_, i) => `+1202555${String(i).padStart(4, '0')}`);
    // About one in twenty is busy on the first try and one in twenty does not answer.
    const firstOutcome = new Map<string, JambonzOutcome>(
      numbers.map((n, i) => [n, i % 20 === 3 ? 'busy' : i % 20 === 11 ? 'no-answer' : 'completed']),
    );
    const dials = new Map<string, number>();
    const driver = driveJambonzCalls(p.jambonz, {
      ringMs: () => 100 + Math.random() * 300,
      talkMs: () => 600 + Math.random() * 1800,
      outcome: (call) => {
        const to = (call.request.to as { number: string }).number;
        const n = (dials.get(to) ?? 0) + 1;
        dials.set(to, n);
        return n === 1 ? (firstOutcome.get(to) ?? 'failed') : 'completed';
      },
    });
    let campaignId = '';
    let maxLeases = 0;
    let maxLiveAtProvider = 0;
    const sampler = setInterval(async () => {
      maxLiveAtProvider = Math.max(maxLiveAtProvider, driver.live());
      maxLeases = Math.max(maxLeases, await p.store.leaseCount(campaignKey(campaignId)));
    }, 10);
    try {
      const created = await p.api('POST', '/v1/campaigns', {
        key,
        body: {
          name: 'Issue 5 check',
          agentId: agent.body.id,
          provider: 'jambonz',
          callerId: '+12025550100',
          timeZone: 'UTC',
          callsPerSecond: CALLS_PER_SECOND,
          maxConcurrentCalls: CONCURRENCY,
          retry: { maxAttempts: 2, retryDelaySec: 1 },
          contacts: numbers.map((phoneNumber) => ({ phoneNumber })),
        },
      });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      campaignId = created.body.id;
      const startedAt = performance.now();
      expect((await p.api('POST', `/v1/campaigns/${campaignId}/start`, { key })).status).toBe(200);

      await eventually(() => driver.placed >= CONTACTS / 2, 60_000, 'half the contacts dialled');
      await p.restartControl();
      const atRestart = (await p.api('GET', `/v1/campaigns/${campaignId}`, { key })).body;
      expect(atRestart.status).toBe('running');
      expect(atRestart.progress.pending).toBeGreaterThan(0);
      expect(atRestart.progress.completed).toBeGreaterThan(0);

      const done: Json = await eventually(
        async () => {
          const c = (await p.api('GET', `/v1/campaigns/${campaignId}`, { key })).body;
          return c.status === 'completed' ? c : undefined;
        },
        90_000,
        'campaign completed',
      );
      const elapsedSec = (performance.now() - startedAt) / 1000;
      clearInterval(sampler);
      await driver.stop();
      expect(driver.errors).toEqual([]);

      const busyOnce = numbers.filter((n) => firstOutcome.get(n) !== 'completed');
      expect(done.progress).toEqual({
        total: CONTACTS,
        pending: 0,
        dialing: 0,
        retrying: 0,
        completed: CONTACTS,
        failed: 0,
        unknown: 0,
        canceled: 0,
      });
      // Never more than 10 live, counted by the leases and by the provider alike; the limit bound.
      expect(maxLeases).toBeLessThanOrEqual(CONCURRENCY);
      expect(maxLiveAtProvider).toBeLessThanOrEqual(CONCURRENCY);
      expect(maxLeases).toBeGreaterThanOrEqual(CONCURRENCY - 2);
      // Pacing: 5 a second at most, so the dials took at least (dials - 1) / 5 seconds.
      const totalDials = CONTACTS + busyOnce.length;
      expect(driver.placed).toBe(totalDials);
      expect(elapsedSec).toBeGreaterThanOrEqual((totalDials - 1) / CALLS_PER_SECOND - 1);

      // Every contact dialled exactly as often as it says: once, or twice after busy / no answer.
      const contacts: Json[] = [];
      let cursor: string | null = null;
      do {
        const page = await p.api(
          'GET',
          `/v1/campaigns/${campaignId}/contacts?limit=100${cursor ? `&cursor=${cursor}` : ''}`,
          { key },
        );
        contacts.push(...page.body.data);
        cursor = page.body.nextCursor;
      } while (cursor);
      expect(contacts).toHaveLength(CONTACTS);
      for (const c of contacts) {
        const expected = firstOutcome.get(c.phoneNumber) === 'completed' ? 1 : 2;
        expect({ number: c.phoneNumber, attempts: c.attempts, dials: dials.get(c.phoneNumber) }).toEqual({
          number: c.phoneNumber,
          attempts: expected,
          dials: expected,
        });
      }
      const creates = p.jambonz.requests.filter((r) => r.method === 'POST' && /\/Calls$/.test(r.path));
      expect(creates).toHaveLength(totalDials);
      // The fake provider completes calls without ever streaming them: each is on record as a call
      // that was answered but never streamed.
      const calls: Json[] = [];
      let callCursor: string | null = null;
      do {
        const page = await p.api(
          'GET',
          `/v1/calls?limit=100&campaignId=${campaignId}${callCursor ? `&cursor=${callCursor}` : ''}`,
          { key },
        );
        calls.push(...page.body.data);
        callCursor = page.body.nextCursor;
      } while (callCursor);
      // Every dial is on record; those the provider answered are calls that never streamed.
      expect(calls).toHaveLength(totalDials);
      for (const c of calls) {
        if (c.status === 'busy' || c.status === 'no-answer') expect(c.endReason).toBe(c.status);
        else expect(c).toMatchObject({ status: 'failed', endReason: 'never_streamed' });
      }
      expect(await p.store.leaseCount(campaignKey(campaignId))).toBe(0);
    } finally {
      clearInterval(sampler);
      await driver.stop();
    }
  }, 150_000);
});
