import { Elysia, t } from 'elysia';
import type { ControlState } from '../../state.ts';
import { measureOutbox, type OutboxLag } from '../webhooks/delivery.ts';

const Dependency = t.Object({
  ok: t.Boolean(),
  kind: t.Optional(t.String()),
  latencyMs: t.Optional(t.Number()),
  error: t.Optional(t.String()),
});

const Health = t.Object({
  status: t.Union([t.Literal('ok'), t.Literal('starting'), t.Literal('degraded')]),
  service: t.Literal('control'),
  version: t.String(),
  dependencies: t.Object({
    postgres: Dependency,
    store: Dependency,
    migrations: t.Union([t.Literal('pending'), t.Literal('running'), t.Literal('done'), t.Literal('failed')]),
  }),
  /** The webhook outbox (control/modules/webhooks/delivery.ts), when Postgres answered. */
  outbox: t.Optional(
    t.Object({
      pending: t.Integer({
        description: 'Deliveries not yet delivered or failed (due or waiting to retry).',
      }),
      due: t.Integer({ description: 'Of those, the ones due now.' }),
      lagMs: t.Number({ description: 'Age of the oldest due delivery, ms (0 when none is due).' }),
    }),
  ),
});

/** The outbox as it stands, or nothing when it cannot be read (not migrated, Postgres away). */
async function outboxOf(state: ControlState): Promise<OutboxLag | undefined> {
  if (state.migrations !== 'done') return undefined;
  try {
    return await measureOutbox(state.sql, Date.now());
  } catch {
    return undefined;
  }
}

/** `GET /v1/health`: ready only when Postgres and the Store answer and migrations are done. */
export const health = (state: ControlState) =>
  new Elysia({ name: 'sipai/health' }).get(
    '/health',
    async ({ set }) => {
      const [postgres, store, outbox] = await Promise.all([
        state.pingDatabase(),
        state.store.health(),
        outboxOf(state),
      ]);
      const migrations = state.migrations;
      const status =
        migrations !== 'done' && migrations !== 'failed'
          ? 'starting'
          : postgres.ok && store.ok && migrations === 'done'
            ? 'ok'
            : 'degraded';
      set.status = status === 'ok' ? 200 : 503;
      return {
        status,
        service: 'control' as const,
        version: state.version,
        dependencies: { postgres: { kind: state.databaseKind, ...postgres }, store, migrations },
        ...(outbox ? { outbox } : {}),
      };
    },
    {
      response: { 200: Health, 503: Health },
      detail: {
        summary: 'Readiness of the control plane',
        description:
          'No API key needed. 200 when Postgres and the Store answer and migrations are done; 503 with the same report naming what is not ready (while starting, or during an outage). `outbox` is how far webhook deliveries are behind (pending, due, age of the oldest due one); it does not change the status. Core’s own is `GET /health`.',
        tags: ['health'],
      },
    },
  );
