import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Control } from '../../control/app.ts';
import { connectDatabase, EMBEDDED_POOL_MAX, type Sql } from '../../control/db/index.ts';
import { parseConfig } from '../../core/config/index.ts';
import { Timeline } from '../../core/session/timeline.ts';
import { type Backing, embedded, eventually, postgresAndRedis } from './support.ts';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';

const redisUrl = inject('redisUrl');
const postgresUrl = inject('postgresUrl');
/** Every log line control writes, to see the recorder fail during the outage, and that no secret is logged. */
const lines: string[] = [];
const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
const FAST = { blockMs: 50, retryMinMs: 50, retryMaxMs: 300, claimIdleMs: 300, claimEveryMs: 100 };

/** How many calls (four events each) and how long Postgres stays out of reach. */
interface Scale {
  calls: number;
  outageMs: number;
}

/**
 * The outage check on PostgreSQL and Redis: 10,000 events, Postgres cut for 10 s
 * while they arrive (control/db/driver keeps the cut from escaping the driver). PGlite, the
 * development default, gets the same test at a size its single connection writes quickly.
 */
const backings: [string, (() => Promise<Backing>) | null, Scale][] = [
  ['PGlite and MemoryStore', embedded, { calls: 200, outageMs: 1_000 }],
  [
    'PostgreSQL and Redis',
    redisUrl && postgresUrl ? () => postgresAndRedis(postgresUrl, redisUrl) : null,
    { calls: 2_500, outageMs: 10_000 },
  ],
];

describe.each(backings)('webhook outbox through a Postgres outage on %s', (_name, makeBacking, scale) => {
  let backing: Backing;
  let proxy: TcpProxy;
  let sql: Sql;
  let control: Control;

  beforeAll(async () => {
    if (!makeBacking) return;
    backing = await makeBacking();
    proxy = await startTcpProxy(backing.databaseUrl);
    sql = connectDatabase(proxy.url, backing.databaseKind === 'embedded' ? EMBEDDED_POOL_MAX : 5);
    control = new Control({
      config: parseConfig({ WEBHOOK_ALLOW_PRIVATE_URLS: 'true' }),
      log,
      sql,
      store: backing.store,
      databaseKind: backing.databaseKind,
      // No dispatcher: the outbox itself is under test.
      workers: { recorder: FAST, dispatcher: false, campaigns: false, sweeper: false },
    });
    await control.start();
  });

  afterAll(async () => {
    if (!makeBacking) return;
    await control?.close();
    await sql?.end({ timeout: 5 });
    await proxy?.stop();
    await backing?.close();
  });

  it.skipIf(!makeBacking)(
    `records each of ${scale.calls * 4} events once and writes each matching delivery exactly once`,
    async () => {
      const CALLS = scale.calls;
      const accountId = (await control.services.accounts.create('outage')).id;
      const agentId = (await control.services.agents.create(accountId, { name: 'Outage' })).id;
      const all = await control.services.webhooks.create(accountId, { url: 'http://127.0.0.1:9/all' });
      const ends = await control.services.webhooks.create(accountId, {
        url: 'http://127.0.0.1:9/ends',
        events: ['call.ended'],
      });
      const runCalls = async (ids: string[]) => {
        const timelines = ids.map((callId) => {
          const t = new Timeline(backing.store, log, { callId, agentId, protocol: 'twilio' });
          t.append('call.started', { protocol: 'twilio', direction: 'inbound' });
          t.append('transcript.final', { text: `hello from ${callId}` });
          t.append('turn.completed', { turn: 1, speechMs: 500 });
          t.append('call.ended', { reason: 'hangup', durationMs: 1000, turns: 1 });
          return t;
        });
        for (const t of timelines) expect(await t.flush()).toBe(true);
      };
      const failures = () =>
        lines.filter((l) => l.includes('stream consumer could not handle entries')).length;
      const ids = Array.from({ length: CALLS }, (_, i) => `outage-${i}-${crypto.randomUUID()}`);
      const third = Math.floor(CALLS / 3);
      await runCalls(ids.slice(0, third));
      // Postgres goes away while events keep coming; the recorder cannot write any of them.
      const failuresBefore = failures();
      await proxy.cut();
      const cutAt = performance.now();
      await runCalls(ids.slice(third, 2 * third));
      // Core kept appending meanwhile; the recorder fails, and retries those batches until
      // Postgres is back: it stays away for the outage the check names.
      await eventually(
        () => failures() > failuresBefore && performance.now() - cutAt >= scale.outageMs,
        scale.outageMs + 10_000,
        'recorder failing for the whole outage',
      );
      await proxy.restore();
      await runCalls(ids.slice(2 * third));
      await eventually(
        async () => {
          const [{ n }] = await sql<{ n: number }[]>`
            select count(*)::int as n from calls where id = any(${ids}::text[]) and status = 'completed'`;
          if (n !== CALLS) throw new Error(`${n} of ${CALLS} calls completed`);
          return true;
        },
        60_000,
        'every call recorded',
      );
      // Each call: its four steps recorded once (the global stream and its own carry copies).
      const [{ events }] = await sql<{ events: number }[]>`
        select count(*)::int as events from call_events where call_id = any(${ids}::text[])`;
      expect(events).toBe(CALLS * 4);
      // Deliveries: call.answered, transcript.final, call.ended to `all`; call.ended to `ends`.
      const rows = await sql<{ endpoint_id: string; type: string; n: number }[]>`
        select d.endpoint_id, v.type, count(*)::int as n from webhook_deliveries d
        join webhook_events v on v.id = d.event_id
        where v.call_id = any(${ids}::text[])
        group by d.endpoint_id, v.type order by d.endpoint_id, v.type`;
      expect(rows).toEqual(
        [
          { endpoint_id: all.id, type: 'call.answered', n: CALLS },
          { endpoint_id: all.id, type: 'call.ended', n: CALLS },
          { endpoint_id: all.id, type: 'transcript.final', n: CALLS },
          { endpoint_id: ends.id, type: 'call.ended', n: CALLS },
        ].sort((a, b) => a.endpoint_id.localeCompare(b.endpoint_id) || a.type.localeCompare(b.type)),
      );
      // The endpoints' secrets appear in no log line.
      const secrets = [all.secret, ends.secret];
      expect(lines.filter((l) => secrets.some((s) => l.includes(s.slice(6))))).toEqual([]);
    },
    120_000,
  );
});
