import { afterAll, describe, expect, inject, it } from 'vitest';
import { generateApiKey } from '../../control/auth/index.ts';
import { type RunningEntry, startEntry } from '../support/processes.ts';
import { apiClient, embedded, makeControl, postgresAndRedis } from './support.ts';

const redisUrl = inject('redisUrl');
const postgresUrl = inject('postgresUrl');

describe('first start', () => {
  it('takes the admin key from ADMIN_API_KEY and does not echo it', async () => {
    const backing = await embedded();
    try {
      const adminKey = generateApiKey();
      const control = makeControl(backing, { ADMIN_API_KEY: adminKey });
      const started = await control.start();
      expect(started.bootstrap).toMatchObject({ accountId: expect.stringMatching(/^acc_/) });
      expect(started.bootstrap).not.toHaveProperty('secret');
      const api = apiClient(control);
      const account = await api('GET', '/v1/account', { key: adminKey });
      expect(account).toMatchObject({ status: 200, body: { id: started.bootstrap!.accountId } });
      const listed = await api('GET', '/v1/keys', { key: adminKey });
      expect(listed.body.data).toEqual([
        expect.objectContaining({ role: 'admin', prefix: adminKey.slice(0, 20), name: 'bootstrap admin' }),
      ]);
      const rows = await backing.sql<{ key_hash: string }[]>`select key_hash from api_keys`;
      expect(rows.map((r) => r.key_hash).join()).not.toContain(adminKey.slice(8));
      await control.close();
    } finally {
      await backing.close();
    }
  }, 30_000);

  describe.skipIf(!postgresUrl || !redisUrl)('on PostgreSQL', () => {
    it('creates one account and one admin key when two nodes start at once', async () => {
      const backing = await postgresAndRedis(postgresUrl!, redisUrl!);
      try {
        const nodes = [makeControl(backing), makeControl(backing)];
        const [a, b] = await Promise.all(nodes.map((node) => node.start()));
        await Promise.all(nodes.map((node) => node.close()));
        expect([a.bootstrap, b.bootstrap].filter(Boolean)).toHaveLength(1);
        const [{ accounts }] = await backing.sql<
          { accounts: number }[]
        >`select count(*)::int as accounts from accounts`;
        const [{ keys }] = await backing.sql<{ keys: number }[]>`select count(*)::int as keys from api_keys`;
        expect({ accounts, keys }).toEqual({ accounts: 1, keys: 1 });
      } finally {
        await backing.close();
      }
    }, 30_000);
  });
});

describe('control/main.ts', () => {
  let entry: RunningEntry | undefined;
  afterAll(async () => {
    if (entry?.proc.exitCode === null) await entry.stop('SIGKILL');
  });

  it('prints a generated admin key once on an empty database, and the key works', async () => {
    entry = startEntry('control/main.ts', { PORT: '0', PGLITE_DATA_DIR: 'memory://', LOG_LEVEL: 'info' });
    const [, key] = await entry.waitFor(
      /Admin API key for account acc_\w+ \(shown once[^\n]*\n\s+(sk_live_\S+)/,
      20_000,
    );
    const [, url] = await entry.waitFor(/"url":"(http:\/\/[^"]+)".*"msg":"control listening"/, 5_000);
    const res = await fetch(`${url}/v1/account`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    expect(entry.output().split(key).length - 1).toBe(1);
    expect((await entry.stop('SIGTERM')).code).toBe(0);
  }, 40_000);
});
