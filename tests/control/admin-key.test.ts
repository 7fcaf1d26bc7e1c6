import pino from 'pino';
import { describe, expect, inject, it } from 'vitest';
import { Control } from '../../control/app.ts';
import { generateApiKey } from '../../control/auth/index.ts';
import { createAdminKey } from '../../control/bootstrap.ts';
import { connectDatabase } from '../../control/db/index.ts';
import { KeyService } from '../../control/modules/keys/index.ts';
import { parseConfig } from '../../core/config/index.ts';
import { MemoryStore } from '../../core/store/index.ts';
import { runAdmin } from '../../scripts/admin.ts';
import { createTestDatabase } from '../support/databases.ts';
import { apiClient, embedded, makeControl } from './support.ts';

const postgresUrl = inject('postgresUrl');

/** A control whose log lines the test can read. */
function loggedControl(backing: Awaited<ReturnType<typeof embedded>>, env: Record<string, string>) {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  const control = new Control({
    config: parseConfig(env),
    log,
    sql: backing.sql,
    store: backing.store,
    databaseKind: backing.databaseKind,
    workers: { recorder: false, campaigns: false },
  });
  return { control, lines };
}

const IGNORED = 'ADMIN_API_KEY matches no active key of this database and is ignored';

describe('a lost admin key', () => {
  it('warns once at boot when ADMIN_API_KEY opens nothing, and never logs the key', async () => {
    const backing = await embedded();
    try {
      const first = generateApiKey();
      const boot = makeControl(backing, { ADMIN_API_KEY: first });
      await boot.start();
      await boot.close();

      const lost = generateApiKey();
      const later = loggedControl(backing, { ADMIN_API_KEY: lost });
      await later.control.start();
      await later.control.close();
      const warnings = later.lines.filter((l) => l.msg === IGNORED);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ level: 40, recovery: 'npm run admin -- create-key' });
      expect(JSON.stringify(later.lines)).not.toContain(lost.slice(8));
      // The key really opens nothing: that is what the warning is about.
      expect((await apiClient(later.control)('GET', '/v1/account', { key: lost })).status).toBe(401);

      // The key of the first start still matches: no warning.
      const same = loggedControl(backing, { ADMIN_API_KEY: first });
      await same.control.start();
      await same.control.close();
      expect(same.lines.filter((l) => l.msg === IGNORED)).toEqual([]);
    } finally {
      await backing.close();
    }
  }, 30_000);

  it('mints a working admin key with database access, for the one account or the one named', async () => {
    const backing = await embedded();
    try {
      const control = makeControl(backing);
      const { bootstrap } = await control.start();
      const api = apiClient(control);

      const minted = await createAdminKey(backing.sql);
      expect(minted).toMatchObject({ accountId: bootstrap!.accountId, accountCreated: false });
      expect((await api('GET', '/v1/account', { key: minted.secret })).body.id).toBe(bootstrap!.accountId);
      const made = await api('POST', '/v1/keys', {
        key: minted.secret,
        body: { name: 'made by recovered key' },
      });
      expect(made.status).toBe(201);
      const listed = await api('GET', '/v1/keys', { key: minted.secret });
      expect(listed.body.data).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ id: minted.keyId, role: 'admin', name: 'recovery admin' }),
        ]),
      );

      // Two accounts: it must be told which.
      const other = await control.services.accounts.create('second');
      await expect(createAdminKey(backing.sql)).rejects.toThrow(/several accounts.*--account/);
      const named = await createAdminKey(backing.sql, { accountId: other.id, name: 'ops' });
      expect((await api('GET', '/v1/account', { key: named.secret })).body.id).toBe(other.id);
      await expect(createAdminKey(backing.sql, { accountId: 'acc_nope' })).rejects.toThrow(
        'no account acc_nope',
      );
      await expect(createAdminKey(backing.sql, { accountId: other.id, name: '' })).rejects.toThrow(/--name/);
      await control.close();
    } finally {
      await backing.close();
    }
  }, 30_000);

  it('refuses bad usage with exit code 2 and the usage line', async () => {
    expect(await runAdmin([], {})).toMatchObject({ code: 2, stderr: expect.stringContaining('usage:') });
    expect(await runAdmin(['create-key', '--acount', 'x'], {})).toMatchObject({ code: 2 });
    expect(await runAdmin(['drop-everything'], {})).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('unknown command drop-everything'),
    });
  });

  describe.skipIf(!postgresUrl)('npm run admin -- create-key on PostgreSQL', () => {
    /** The script as an operator runs it, in its own process. */
    async function admin(args: string[], env: Record<string, string>) {
      const proc = Bun.spawn([process.execPath, 'run', 'scripts/admin.ts', ...args], {
        cwd: new URL('../../', import.meta.url).pathname,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
        stdout: 'pipe',
        stderr: 'pipe',
      });
      const [stdout, stderr, code] = await Promise.all([
        new Response(proc.stdout).text(),
        new Response(proc.stderr).text(),
        proc.exited,
      ]);
      return { code, stdout, stderr };
    }

    const KEY_LINE =
      /Admin API key (key_\w+) for account (acc_\w+)[^\n]*\(shown once[^\n]*\n\s+(sk_live_\S+)\n/;

    it('prints a new admin key once, which control accepts; a wrong account is refused', async () => {
      const db = await createTestDatabase(postgresUrl!);
      const sql = connectDatabase(db.url, 2);
      try {
        // A deployment that has run before, whose admin key is gone.
        const control = new Control({
          config: parseConfig({}),
          log: pino({ level: 'silent' }),
          sql,
          store: new MemoryStore(),
          databaseKind: 'postgres',
          workers: { recorder: false, campaigns: false },
        });
        const { bootstrap } = await control.start();
        await control.close();

        const run = await admin(['create-key', '--name', 'ops recovery'], { DATABASE_URL: db.url });
        expect(run).toMatchObject({ code: 0, stderr: '' });
        const [, keyId, accountId, secret] = KEY_LINE.exec(run.stdout) ?? [];
        expect(accountId).toBe(bootstrap!.accountId);
        expect(run.stdout.split(secret!).length - 1).toBe(1);
        expect(await new KeyService(sql).authenticate(secret!)).toEqual({
          accountId,
          keyId,
          role: 'admin',
        });

        const wrong = await admin(['create-key', '--account', 'acc_nope'], { DATABASE_URL: db.url });
        expect(wrong).toMatchObject({ code: 1, stdout: '', stderr: 'no account acc_nope\n' });
      } finally {
        await sql.end({ timeout: 5 });
        await db.drop();
      }
    }, 60_000);
  });
});
