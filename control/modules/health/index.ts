import { Elysia, t } from 'elysia';
import type { ControlState } from '../../state.ts';

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
});

/** `GET /v1/health`: ready only when Postgres and the Store answer and migrations are done. */
export const health = (state: ControlState) =>
  new Elysia({ name: 'sipai/health' }).get(
    '/health',
    async ({ set }) => {
      const [postgres, store] = await Promise.all([state.pingDatabase(), state.store.health()]);
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
      };
    },
    {
      response: { 200: Health, 503: Health },
      detail: { summary: 'Readiness of the control plane', tags: ['health'] },
    },
  );
