import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Control } from '../../control/app.ts';
import { connectDatabase, EMBEDDED_POOL_MAX, type Sql } from '../../control/db/index.ts';
import { enqueueAccountEvent } from '../../control/modules/webhooks/outbox.ts';
import { Dispatcher } from '../../control/workers/dispatcher.ts';
import { metricsResponse } from '../../core/observability/index.ts';
import { apiClient, type Backing, embedded, eventually, makeAccount, makeControl } from './support.ts';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';

/** A policy that retries nothing for long: these tests look at the outbox, not at retries. */
const POLICY = {
  timeoutMs: 2_000,
  maxAttempts: 3,
  retryBaseMs: 10,
  retryMaxMs: 20,
  disableAfterFailures: 100,
  allowPrivate: true,
};

/**
 * How far the webhook outbox is behind, where an operator sees it: `/v1/health` (pending, due,
 * age of the oldest due delivery) and control's `/metrics` (the dispatcher's gauges); and the
 * dispatcher's failures, logged once per streak, not per poll.
 */
describe('webhook outbox lag', () => {
  let backing: Backing;
  let control: Control;
  let accountId: string;
  let endpointId: string;
  let receiver: ReturnType<typeof Bun.serve>;
  let received = 0;

  beforeAll(async () => {
    backing = await embedded();
    control = makeControl(backing, { WEBHOOK_ALLOW_PRIVATE_URLS: 'true' }, backing.store, {
      workers: { recorder: false, dispatcher: false, campaigns: false, sweeper: false },
    });
    await control.start();
    receiver = Bun.serve({
      port: 0,
      hostname: '127.0.0.1',
      fetch: async (req) => {
        await req.text();
        received++;
        return new Response('ok');
      },
    });
    accountId = (await makeAccount(control, 'lag')).accountId;
    endpointId = (
      await control.services.webhooks.create(accountId, { url: `http://127.0.0.1:${receiver.port}/hook` })
    ).id;
  });

  afterAll(async () => {
    receiver?.stop(true);
    await control?.close();
    await backing?.close();
  });

  /** Writes `n` events for the endpoint; their deliveries become due at `dueAt`. */
  async function enqueue(prefix: string, n: number, dueAt: Date): Promise<void> {
    await backing.sql.begin(async (tx) => {
      for (let i = 0; i < n; i++)
        await enqueueAccountEvent(tx, {
          id: `evt_${prefix}_${i}`,
          accountId,
          type: 'agent.updated',
          data: { agentId: 'agt_1', version: i },
        });
    });
    await backing.sql`
      update webhook_deliveries set next_attempt_at = ${dueAt}
      where event_id like ${`evt_${prefix}_%`}`;
  }

  it('/v1/health reports pending and due deliveries and the age of the oldest due one', async () => {
    const api = apiClient(control);
    const before = await api('GET', '/v1/health');
    expect(before.status).toBe(200);
    expect(before.body.outbox).toEqual({ pending: 0, due: 0, lagMs: 0 });

    // Two due for 90 s, one held back for a retry an hour away.
    await enqueue('late', 2, new Date(Date.now() - 90_000));
    await enqueue('later', 1, new Date(Date.now() + 3_600_000));
    const after = await api('GET', '/v1/health');
    expect(after.status).toBe(200);
    expect(after.body.outbox).toMatchObject({ pending: 3, due: 2 });
    expect(after.body.outbox.lagMs).toBeGreaterThanOrEqual(90_000);
    expect(after.body.outbox.lagMs).toBeLessThan(90_000 + 60_000);

    // A disabled endpoint's deliveries wait for nobody: they are not behind.
    await backing.sql`update webhook_endpoints set enabled = false where id = ${endpointId}`;
    expect((await api('GET', '/v1/health')).body.outbox).toEqual({ pending: 0, due: 0, lagMs: 0 });
    await backing.sql`update webhook_endpoints set enabled = true where id = ${endpointId}`;
    await backing.sql`delete from webhook_deliveries where endpoint_id = ${endpointId}`;
  });

  it('exports the lag and the pending count as gauges on /metrics', async () => {
    const dueAt = Date.parse('2030-01-01T00:00:00Z');
    await enqueue('metric', 3, new Date(dueAt));
    const log = pino({ level: 'silent' });
    // The dispatcher's clock stands 42 s after the deliveries fell due.
    const dispatcher = new Dispatcher({ sql: backing.sql, log }, POLICY, {
      now: () => dueAt + 42_000,
      pollMs: 10,
    });
    dispatcher.start();
    try {
      await eventually(() => dispatcher.counts.delivered === 3, 10_000, 'three delivered');
    } finally {
      await dispatcher.stop();
    }
    expect(dispatcher.outbox).toEqual({ pending: 3, due: 3, lagMs: 42_000 });
    const text = await (await metricsResponse()).text();
    expect(text).toMatch(/^sipai_webhook_outbox_lag_seconds 42$/m);
    expect(text).toMatch(/^sipai_webhook_outbox_pending 3$/m);
    expect(received).toBeGreaterThanOrEqual(3);
  });

  describe('while Postgres is out of reach', () => {
    let proxy: TcpProxy;
    let sql: Sql;

    beforeAll(async () => {
      proxy = await startTcpProxy(backing.databaseUrl);
      sql = connectDatabase(proxy.url, EMBEDDED_POOL_MAX);
    });

    afterAll(async () => {
      await proxy?.restore();
      await sql?.end({ timeout: 5 });
      await proxy?.stop();
    });

    it('logs the dispatcher failing once per streak, not once per poll', async () => {
      const lines: { msg: string; failedPolls?: number }[] = [];
      const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
      const dispatcher = new Dispatcher({ sql, log }, POLICY, {
        pollMs: 5,
        retryMinMs: 5,
        retryMaxMs: 10,
        lagEveryMs: 0,
      });
      const said = (what: string) => lines.filter((l) => l.msg.startsWith(what));
      dispatcher.start();
      try {
        for (let streak = 1; streak <= 2; streak++) {
          const failedBefore = dispatcher.failedPolls;
          await proxy.cut();
          // Polls fail as fast as the driver retries its connection (its backoff, up to 2 s).
          await eventually(() => dispatcher.failedPolls >= failedBefore + 3, 15_000, 'three failed polls');
          expect(said('webhook dispatcher cannot read the outbox')).toHaveLength(streak);
          await proxy.restore();
          await eventually(
            () => said('webhook dispatcher reaches the outbox again').length === streak,
            15_000,
            'recovery logged',
          );
        }
      } finally {
        await dispatcher.stop();
      }
      // Each recovery line counts the polls its streak lost.
      const recoveries = said('webhook dispatcher reaches the outbox again');
      expect(recoveries.every((l) => (l.failedPolls ?? 0) >= 3)).toBe(true);
      expect(said('webhook dispatcher cannot read the outbox')).toHaveLength(2);
    }, 60_000);
  });
});
