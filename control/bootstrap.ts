import { apiKeyMatches, apiKeyPrefix } from './auth/api-key.ts';
import type { Sql } from './db/index.ts';
import { AccountService } from './modules/accounts/service.ts';
import { KeyService } from './modules/keys/service.ts';

/** What the first start created. `secret` is set only when the key was generated here. */
export interface Bootstrap {
  accountId: string;
  keyId: string;
  /** The generated admin key: print it once, it is not stored anywhere in clear. */
  secret?: string;
}

/** Arbitrary but fixed: serialises bootstraps of control nodes starting at once. */
const BOOTSTRAP_LOCK_ID = 7_314_202;

/**
 * On an empty database, creates the first account and its admin key: `adminApiKey` when given
 * (ADMIN_API_KEY), a random one otherwise. Does nothing (null) once any account exists. An
 * advisory lock keeps two nodes booting at once from both creating one.
 */
export async function bootstrapAdmin(
  sql: Sql,
  services: { accounts: AccountService; keys: KeyService },
  adminApiKey: string | undefined,
): Promise<Bootstrap | null> {
  return sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${BOOTSTRAP_LOCK_ID})`;
    const [existing] = await tx`select 1 from accounts limit 1`;
    if (existing) return null;
    const account = await services.accounts.create('default', tx);
    const key = await services.keys.create(
      account.id,
      { name: 'bootstrap admin', role: 'admin', secret: adminApiKey },
      tx,
    );
    return { accountId: account.id, keyId: key.id, ...(adminApiKey ? {} : { secret: key.secret }) };
  });
}

/**
 * Whether `secret` is an active key of the database, read-only (no `last_used_at` touch). At boot
 * it tells an operator that ADMIN_API_KEY, which only the first start uses, opens nothing.
 */
export async function adminKeyMatches(sql: Sql, secret: string): Promise<boolean> {
  const rows = await sql<{ key_hash: string }[]>`
    select key_hash from api_keys where prefix = ${apiKeyPrefix(secret)} and revoked_at is null`;
  return rows.some((r) => apiKeyMatches(secret, r.key_hash));
}

/** Why an operator's `create-key` could not mint a key: told as is, exit code 1. */
export class AdminKeyError extends Error {
  override name = 'AdminKeyError';
}

/** A key minted by {@link createAdminKey}: print `secret` once, it is stored only as a hash. */
export interface MintedAdminKey {
  accountId: string;
  keyId: string;
  secret: string;
  /** True when the database had no account and this created the first one. */
  accountCreated: boolean;
}

/**
 * The way back in when every admin key is lost: mints a new admin key with database access,
 * no API key needed (`npm run admin -- create-key`). Without `accountId` it takes the only
 * account, or creates the first one on an empty database; with several accounts it must be told
 * which. Runs under the bootstrap lock, so it cannot race a first start.
 */
export async function createAdminKey(
  sql: Sql,
  opts: { accountId?: string; name?: string } = {},
): Promise<MintedAdminKey> {
  const name = opts.name ?? 'recovery admin';
  if (name.length < 1 || name.length > 100) throw new AdminKeyError('--name must be 1 to 100 characters');
  return sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${BOOTSTRAP_LOCK_ID})`;
    let accountId = opts.accountId;
    let accountCreated = false;
    if (accountId) {
      const [found] = await tx`select 1 from accounts where id = ${accountId}`;
      if (!found) throw new AdminKeyError(`no account ${accountId}`);
    } else {
      const rows = await tx<{ id: string }[]>`select id from accounts order by created_at limit 6`;
      if (rows.length > 1) {
        const shown = rows.slice(0, 5).map((r) => r.id);
        throw new AdminKeyError(
          `the database has several accounts (${shown.join(', ')}${rows.length > 5 ? ', …' : ''}): name one with --account <id>`,
        );
      }
      if (rows.length === 1) accountId = rows[0]!.id;
      else {
        accountId = (await new AccountService(tx).create('default', tx)).id;
        accountCreated = true;
      }
    }
    const key = await new KeyService(sql).create(accountId, { name, role: 'admin' }, tx);
    return { accountId, keyId: key.id, secret: key.secret, accountCreated };
  });
}
