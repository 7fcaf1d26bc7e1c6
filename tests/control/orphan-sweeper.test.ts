import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Control } from '../../control/app.ts';
import { OrphanSweeper } from '../../control/workers/orphan-sweeper.ts';
import { CallCapacity, leaseRecordKey } from '../../core/capacity/call-capacity.ts';
import { parseConfig } from '../../core/config/index.ts';
import { createLogger } from '../../core/observability/index.ts';
import { Timeline } from '../../core/session/timeline.ts';
import { keys } from '../../core/store/index.ts';
import { type Backing, embedded, eventually, postgresAndRedis } from './support.ts';

const redisUrl = inject('redisUrl');
const postgresUrl = inject('postgresUrl');
const log = createLogger({ level: 'silent', service: 'test' });

const LEASE_TTL_MS = 5_000;
const MAX_CALL_MS = 120_000;

const backings: [string, (() => Promise<Backing>) | null][] = [
  ['PGlite and MemoryStore', embedded],
  ['PostgreSQL and Redis', redisUrl && postgresUrl ? () => postgresAndRedis(postgresUrl, redisUrl) : null],
];

/**
 * A call whose core node died and whose status callback never came would stay `in-progress`
 * forever. The sweeper closes it once its leases lapsed and it has been quiet longer than the
 * lease TTL (or, with no leases at all, once it is older than any call can be). Its clock is
 * injected: the test moves time, not the wall clock.
 */
describe.each(backings)('Orphan sweeper on %s', (_name, makeBacking) => {
  let backing: Backing;
  let control: Control;
  let accountId: string;
  let agentId: string;
  let offsetMs = 0;
  let sweeper: OrphanSweeper;

  beforeAll(async () => {
    if (!makeBacking) return;
    backing = await makeBacking();
    control = new Control({
      config: parseConfig({}),
      log,
      sql: backing.sql,
      store: backing.store,
      databaseKind: backing.databaseKind,
      workers: { recorder: { blockMs: 50 }, campaigns: false, sweeper: false },
    });
    await control.start();
    accountId = (await control.services.accounts.create('swept')).id;
    agentId = (await control.services.agents.create(accountId, { name: 'Swept' })).id;
    sweeper = new OrphanSweeper(
      { sql: backing.sql, store: backing.store, log },
      {
        leaseTtlMs: LEASE_TTL_MS,
        maxCallMs: MAX_CALL_MS,
        timelineTtlMs: 300,
        now: () => Date.now() + offsetMs,
      },
    );
  });

  afterAll(async () => {
    if (!makeBacking) return;
    await control?.close();
    await backing?.close();
  });

  /** A session that started (with a step only its own stream carries) and never ended. */
  const startedCall = async (callId: string, protocol = 'jambonz') => {
    const timeline = new Timeline(backing.store, log, { callId, agentId, protocol });
    timeline.append('call.started', { protocol, direction: 'inbound' });
    timeline.append('user.speech_started');
    timeline.append('turn.completed', { turn: 1, speechMs: 700, endpointingMs: 400 });
    expect(await timeline.flush()).toBe(true);
    return timeline;
  };

  const callNow = (callId: string) => control.services.calls.get(accountId, callId);

  const statusIs = (callId: string, status: string) =>
    eventually(
      async () => {
        const c = await callNow(callId).catch(() => undefined);
        return c?.status === status ? c : undefined;
      },
      15_000,
      `call ${callId} ${status}`,
    );

  it.skipIf(!makeBacking)(
    'closes a call whose node died as lost, keeping its steps; a late end still wins',
    async () => {
      offsetMs = 0;
      const callId = `orphan-${crypto.randomUUID()}`;
      // Core admitted it: its lease record lives while a node renews it.
      const capacity = new CallCapacity(backing.store, {
        globalMax: 1000,
        perCampaignMax: 100,
        ttlMs: 60_000,
      });
      expect(await capacity.admit(callId, { agentId })).toEqual({ ok: true });
      const timeline = await startedCall(callId);
      await statusIs(callId, 'in-progress');

      // Quiet for less than the lease TTL: left alone.
      await sweeper.sweep();
      expect((await callNow(callId)).status).toBe('in-progress');
      // Quiet long enough, but its lease record is there (a node renews it): left alone.
      offsetMs = 10 * LEASE_TTL_MS;
      await sweeper.sweep();
      expect((await callNow(callId)).status).toBe('in-progress');

      // The node dies: nobody renews, and the lease record lapses.
      await backing.store.expire(leaseRecordKey(callId), 1);
      await eventually(
        async () => (await backing.store.get(leaseRecordKey(callId))) === null,
        5_000,
        'lease record lapsed',
      );
      expect(await sweeper.sweep()).toBeGreaterThanOrEqual(1);
      const lost = await callNow(callId);
      expect(lost).toMatchObject({ status: 'failed', endReason: 'lost' });
      expect(lost.endedAt).toBeTypeOf('string');
      // The steps only the call's own stream had are kept.
      expect(lost.timeline.map((e) => e.type)).toEqual([
        'call.started',
        'user.speech_started',
        'turn.completed',
      ]);
      // Its own stream goes once closed.
      await eventually(
        async () => (await backing.store.streamLength(keys.callTimeline(callId))) === 0,
        5_000,
        'timeline stream expired',
      );
      // A second sweep finds nothing more to do with it.
      await sweeper.sweep();
      expect((await callNow(callId)).endReason).toBe('lost');

      // The call's own end, arriving late after all, beats the verdict.
      timeline.append('call.ended', { reason: 'provider_hangup', durationMs: 9000, turns: 1 });
      expect(await timeline.flush()).toBe(true);
      const ended = await statusIs(callId, 'completed');
      expect(ended.endReason).toBe('provider_hangup');
    },
  );

  it.skipIf(!makeBacking)('closes an admitted call whose stream never came as never_streamed', async () => {
    offsetMs = 0;
    const callId = `admitted-${crypto.randomUUID()}`;
    // What admission appends for a call it admitted (core/telephony/webhooks/admission.ts).
    await backing.store.append(keys.events, {
      type: 'call.admitted',
      callId,
      agentId,
      protocol: 'twilio',
      at: new Date().toISOString(),
      data: JSON.stringify({ direction: 'inbound', from: '+15550001111', to: '+15550002222' }),
    });
    await statusIs(callId, 'queued');
    offsetMs = 10 * LEASE_TTL_MS;
    await sweeper.sweep();
    const closed = await callNow(callId);
    expect(closed).toMatchObject({
      status: 'failed',
      endReason: 'never_streamed',
      direction: 'inbound',
      from: '+15550001111',
      to: '+15550002222',
    });
  });

  it.skipIf(!makeBacking)(
    'closes a native session, which holds no leases, only past the longest call',
    async () => {
      offsetMs = 0;
      const callId = `native-${crypto.randomUUID()}`;
      await startedCall(callId, 'native');
      await statusIs(callId, 'in-progress');
      offsetMs = 10 * LEASE_TTL_MS;
      await sweeper.sweep();
      expect((await callNow(callId)).status).toBe('in-progress');
      offsetMs = MAX_CALL_MS + LEASE_TTL_MS;
      await sweeper.sweep();
      expect(await callNow(callId)).toMatchObject({ status: 'failed', endReason: 'lost' });
    },
  );

  it.skipIf(!makeBacking)('runs inside control on its own schedule', async () => {
    offsetMs = 0;
    const callId = `scheduled-${crypto.randomUUID()}`;
    await startedCall(callId);
    await statusIs(callId, 'in-progress');
    const scheduled = new Control({
      config: parseConfig({ TELEPHONY_SEMAPHORE_TTL_SEC: '2' }),
      log,
      sql: backing.sql,
      store: backing.store,
      databaseKind: backing.databaseKind,
      workers: {
        recorder: false,
        campaigns: false,
        sweeper: { everyMs: 50, now: () => Date.now() + 60_000 },
      },
    });
    expect(scheduled.orphanSweeper).not.toBeNull();
    await scheduled.start();
    try {
      const lost = await statusIs(callId, 'failed');
      expect(lost.endReason).toBe('lost');
    } finally {
      await scheduled.close();
    }
  });
});
