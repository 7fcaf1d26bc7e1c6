import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Control } from '../../control/app.ts';
import { connectDatabase, EMBEDDED_POOL_MAX, type Sql } from '../../control/db/index.ts';
import { Recorder } from '../../control/workers/recorder.ts';
import { parseConfig } from '../../core/config/index.ts';
import { createLogger } from '../../core/observability/index.ts';
import { registry } from '../../core/observability/metrics.ts';
import { Timeline } from '../../core/session/timeline.ts';
import { keys } from '../../core/store/index.ts';
import { type Backing, embedded, eventually, postgresAndRedis } from './support.ts';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';

const redisUrl = inject('redisUrl');
const postgresUrl = inject('postgresUrl');
const log = createLogger({ level: 'silent', service: 'test' });

const FAST = { blockMs: 50, retryMinMs: 50, retryMaxMs: 300, claimIdleMs: 300, claimEveryMs: 100 };
/** How long a recorded call's own stream stays in the Store here (an hour by default). */
const TIMELINE_TTL_MS = 300;

const backings: [string, (() => Promise<Backing>) | null][] = [
  ['PGlite and MemoryStore', embedded],
  ['PostgreSQL and Redis', redisUrl && postgresUrl ? () => postgresAndRedis(postgresUrl, redisUrl) : null],
];

describe.each(backings)('Recorder on %s', (_name, makeBacking) => {
  let backing: Backing;
  let proxy: TcpProxy;
  /** The one pool of this suite, through the proxy, so the test can take Postgres away. */
  let sql: Sql;
  let control: Control;
  let accountId: string;
  let agentId: string;

  beforeAll(async () => {
    if (!makeBacking) return;
    backing = await makeBacking();
    proxy = await startTcpProxy(backing.databaseUrl);
    sql = connectDatabase(proxy.url, backing.databaseKind === 'embedded' ? EMBEDDED_POOL_MAX : 5);
    control = new Control({
      config: parseConfig({}),
      log,
      sql,
      store: backing.store,
      databaseKind: backing.databaseKind,
      workers: { recorder: { ...FAST, timelineTtlMs: TIMELINE_TTL_MS }, campaigns: false, sweeper: false },
    });
    await control.start();
    accountId = (await control.services.accounts.create('recorded')).id;
    agentId = (await control.services.agents.create(accountId, { name: 'Recorded' })).id;
  });

  afterAll(async () => {
    if (!makeBacking) return;
    await control?.close();
    await sql?.end({ timeout: 5 });
    await proxy?.stop();
    await backing?.close();
  });

  /** One call as core's session writes it: started, two turns, ended. */
  const callEvents = async (callId: string) => {
    const timeline = new Timeline(backing.store, log, { callId, agentId, protocol: 'twilio' });
    timeline.append('call.started', { protocol: 'twilio', direction: 'inbound' });
    timeline.append('turn.completed', { turn: 1, speechMs: 800, endpointingMs: 450 });
    timeline.append('mark', { name: 'm1', status: 'played' });
    timeline.append('turn.completed', { turn: 2, speechMs: 600, endpointingMs: 550 });
    timeline.append('call.ended', { reason: 'stream_stopped', durationMs: 5000, turns: 2 });
    expect(await timeline.flush()).toBe(true);
  };

  const recorded = (callId: string) =>
    eventually(
      async () => {
        const call = await control.services.calls.get(accountId, callId).catch(() => undefined);
        return call?.status === 'completed' ? call : undefined;
      },
      15_000,
      `call ${callId} recorded`,
    );

  /** Nothing pending in the group: a probe consumer finds nothing to claim. */
  const nothingPending = async () =>
    expect(
      await backing.store.claimIdle(keys.events, 'recorder', 'probe', { minIdleMs: 0, count: 100 }),
    ).toEqual([]);

  it.skipIf(!makeBacking)('writes each call once, with every step, however many copies arrive', async () => {
    const callId = `rec-${crypto.randomUUID()}`;
    await callEvents(callId);
    const call = await recorded(callId);
    expect(call.timeline.map((e) => e.type)).toEqual([
      'call.started',
      'turn.completed',
      'mark',
      'turn.completed',
      'call.ended',
    ]);
    expect(call.latency.endpointingMs).toMatchObject({ count: 2, p50: 450, max: 550 });
    expect(call.agentId).toBe(agentId);
    const [{ n }] = await sql<
      { n: number }[]
    >`select count(*)::int as n from call_events where call_id = ${callId}`;
    expect(n).toBe(5);
    await nothingPending();
  });

  it.skipIf(!makeBacking)(
    'lets a call’s own stream expire once its end is recorded, and keeps the stream of a live call',
    async () => {
      const live = `live-${crypto.randomUUID()}`;
      const unfinished = new Timeline(backing.store, log, { callId: live, agentId, protocol: 'twilio' });
      unfinished.append('call.started', { protocol: 'twilio', direction: 'inbound' });
      unfinished.append('mark', { name: 'm1', status: 'played' });
      expect(await unfinished.flush()).toBe(true);
      const callId = `expiring-${crypto.randomUUID()}`;
      await callEvents(callId);
      expect((await recorded(callId)).timeline).toHaveLength(5);
      await eventually(
        async () => (await backing.store.streamLength(keys.callTimeline(callId))) === 0,
        10_000,
        'recorded call’s stream expired',
      );
      // The live call's stream has no end recorded, so it stays.
      expect(await backing.store.streamLength(keys.callTimeline(live))).toBe(2);
      // Its record keeps every step.
      expect((await control.services.calls.get(accountId, callId)).timeline).toHaveLength(5);
    },
  );

  it.skipIf(!makeBacking)(
    'lets another recorder claim the batch of one that died before acking it',
    async () => {
      await control.recorder!.stop();
      const dying = new Recorder(
        { sql, store: backing.store, log, campaigns: control.services.campaigns },
        { ...FAST, consumer: 'dying', claimIdleMs: 60_000 },
      );
      dying.start();
      await proxy.cut();
      const ids = [0, 1, 2].map((i) => `claim-${i}-${crypto.randomUUID()}`);
      for (const id of ids) await callEvents(id);
      // It reads the batch, cannot write it, and dies with the batch unacked.
      await Bun.sleep(400);
      await dying.stop();
      expect(dying.recorded).toBe(0);
      await proxy.restore();

      const survivor = new Recorder(
        { sql, store: backing.store, log, campaigns: control.services.campaigns },
        { ...FAST, consumer: 'survivor' },
      );
      survivor.start();
      try {
        for (const id of ids) expect((await recorded(id)).timeline).toHaveLength(5);
        await nothingPending();
      } finally {
        await survivor.stop();
      }
      control.recorder!.start();
    },
  );

  /** Entries Postgres refuses, appended straight to the events stream (no sanitiser on the way). */
  const poisonEntries = (callId: string): Record<string, string>[] => {
    const base = { callId, agentId, protocol: 'native', at: new Date().toISOString(), tMs: '5' };
    return [
      // jsonb refuses \u0000: "unsupported Unicode escape sequence".
      {
        ...base,
        type: 'call.ended',
        data: JSON.stringify({ reason: 'stream_stopped', detail: 'bye\u0000' }),
      },
      // text refuses a raw NUL byte.
      { ...base, type: 'call.started\u0000', data: JSON.stringify({ direction: 'inbound' }) },
      // A lone surrogate cannot be UTF-8 at all.
      { ...base, type: 'dtmf', data: JSON.stringify({ digit: '\ud800' }) },
    ];
  };

  const deadLetters = async (ids: string[]) =>
    sql<{ entry_id: string; error: string; attempts: number; payload: string; consumer_group: string }[]>`
      select entry_id, error, attempts, payload, consumer_group from dead_letters
      where entry_id = any(${ids}::text[]) order by entry_id`;

  it.skipIf(!makeBacking)(
    'moves events Postgres refuses to dead_letters, and records the events around them',
    async () => {
      const before = `before-${crypto.randomUUID()}`;
      const poisoned = `poison-${crypto.randomUUID()}`;
      const after = [0, 1, 2].map((i) => `after-${i}-${crypto.randomUUID()}`);
      const deadBefore = control.recorder!.deadLettered;
      await callEvents(before);
      const poisonIds: string[] = [];
      for (const fields of poisonEntries(poisoned))
        poisonIds.push(await backing.store.append(keys.events, fields));
      for (const id of after) await callEvents(id);

      for (const id of [before, ...after]) expect((await recorded(id)).timeline).toHaveLength(5);
      const letters = await eventually(
        async () => {
          const rows = await deadLetters(poisonIds);
          return rows.length === poisonIds.length ? rows : undefined;
        },
        15_000,
        'poison entries dead-lettered',
      );
      expect(letters.map((l) => l.entry_id).sort()).toEqual([...poisonIds].sort());
      for (const letter of letters) {
        expect(letter.attempts).toBe(3);
        expect(letter.consumer_group).toBe('recorder');
        expect(letter.error).toMatch(/^22/);
        // The payload is the entry, whole: JSON keeps the NUL and the surrogate as escapes.
        expect(JSON.parse(letter.payload).callId).toBe(poisoned);
      }
      expect(letters.some((l) => JSON.parse(l.payload).type === 'call.started\u0000')).toBe(true);
      expect(control.recorder!.deadLettered - deadBefore).toBe(poisonIds.length);
      const metric = (await registry.getMetricsAsJSON()).find(
        (m) => m.name === 'sipai_stream_dead_letters_total',
      );
      const series = metric?.values.find(
        (v) => v.labels.group === 'recorder' && v.labels.stream === keys.events,
      );
      expect(Number(series?.value)).toBeGreaterThanOrEqual(poisonIds.length);
      await nothingPending();
    },
  );

  it.skipIf(!makeBacking)(
    'loses nothing while Postgres is down: retries, then writes it all once it is back',
    async () => {
      const deadBefore = control.recorder!.deadLettered;
      await proxy.cut();
      const ids = [0, 1, 2, 3, 4].map((i) => `down-${i}-${crypto.randomUUID()}`);
      try {
        for (const id of ids) await callEvents(id);
        const before = control.recorder!.recorded;
        await Bun.sleep(1000);
        expect(control.recorder!.recorded).toBe(before);
        const health = await control.fetch(new Request('http://localhost/v1/health'));
        expect(health.status).toBe(503);
      } finally {
        await proxy.restore();
      }
      for (const id of ids) {
        const call = await recorded(id);
        expect(call.timeline.map((e) => e.type)).toEqual([
          'call.started',
          'turn.completed',
          'mark',
          'turn.completed',
          'call.ended',
        ]);
      }
      await nothingPending();
      // An outage is not bad data: nothing was set aside.
      expect(control.recorder!.deadLettered).toBe(deadBefore);
      const [{ n }] = await sql<{ n: number }[]>`
        select count(*)::int as n from dead_letters where payload like ${'%down-%'}`;
      expect(n).toBe(0);
    },
  );
});
