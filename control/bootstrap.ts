import type { Sql } from './db/index.ts';
import type { AccountService } from './modules/accounts/service.ts';
import type { KeyService } from './modules/keys/service.ts';

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
