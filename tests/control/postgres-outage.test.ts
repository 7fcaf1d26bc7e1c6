import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Control } from '../../control/app.ts';
import { connectDatabase, EMBEDDED_POOL_MAX, type Sql } from '../../control/db/index.ts';
import { parseConfig } from '../../core/config/index.ts';
import { createLogger } from '../../core/observability/index.ts';
import { RedisStore } from '../../core/store/index.ts';
import {
  type ApiClient,
  apiClient,
  type Backing,
  embedded,
  eventually,
  postgresAndRedis,
} from './support.ts';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';

const redisUrl = inject('redisUrl');
const postgresUrl = inject('postgresUrl');
const log = createLogger({ level: 'silent', service: 'test' });

const backings: [string, (() => Promise<Backing>) | null][] = [
  ['PGlite', embedded],
  ['PostgreSQL', redisUrl && postgresUrl ? () => postgresAndRedis(postgresUrl, redisUrl) : null],
];

describe.each(backings)('control while %s is out of reach', (_name, makeBacking) => {
  let backing: Backing;
  let proxy: TcpProxy;
  let sql: Sql;
  let control: Control;
  let api: ApiClient;
  let key: string;

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
      workers: { recorder: false, campaigns: false },
    });
    await control.start();
    const account = await control.services.accounts.create('outage');
    key = (await control.services.keys.create(account.id, { name: 'admin', role: 'admin' })).secret;
    api = apiClient(control);
  });

  afterAll(async () => {
    if (!makeBacking) return;
    await proxy?.restore();
    await control?.close();
    await sql?.end({ timeout: 5 });
    await proxy?.stop();
    await backing?.close();
  });

  it.skipIf(!makeBacking)(
    'answers 503 database_unavailable, not 500, and recovers by itself',
    async () => {
      expect((await api('GET', '/v1/calls', { key })).status).toBe(200);
      await proxy.cut();
      const during = await api('GET', '/v1/calls', { key });
      expect(during).toMatchObject({
        status: 503,
        body: { error: { code: 'database_unavailable' } },
      });
      expect(during.headers.get('retry-after')).toBe('1');
      await proxy.restore();
      await eventually(
        async () => (await api('GET', '/v1/calls', { key })).status === 200,
        15_000,
        'recovered',
      );
    },
    30_000,
  );
});

describe.skipIf(!redisUrl)('control while the Store is out of reach', () => {
  it('answers 503 store_unavailable, not 500', async () => {
    const backing = await embedded();
    const proxy = await startTcpProxy(redisUrl!);
    const store = await RedisStore.connect(proxy.url, { prefix: `t:${randomUUID()}:` });
    try {
      const control = new Control({
        config: parseConfig({}),
        log,
        sql: backing.sql,
        store,
        databaseKind: backing.databaseKind,
        workers: { recorder: false, campaigns: false },
      });
      await control.start();
      const account = await control.services.accounts.create('outage');
      const key = (await control.services.keys.create(account.id, { name: 'admin', role: 'admin' })).secret;
      const api = apiClient(control);
      expect((await api('GET', '/v1/calls', { key })).status).toBe(200);
      await proxy.cut();
      const started = performance.now();
      const during = await api('GET', '/v1/calls', { key });
      const ms = performance.now() - started;
      expect(during).toMatchObject({ status: 503, body: { error: { code: 'store_unavailable' } } });
      // Behaviour bound, not a speed target: no request waits on a Store that is gone.
      expect(ms).toBeLessThan(1_500);
      await proxy.restore();
      await eventually(
        async () => (await api('GET', '/v1/calls', { key })).status === 200,
        15_000,
        'recovered',
      );
      await control.close();
    } finally {
      await proxy.restore();
      await store.close();
      await proxy.stop();
      await backing.close();
    }
  }, 30_000);
});
