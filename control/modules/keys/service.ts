import { apiKeyMatches, apiKeyPrefix, generateApiKey, hashApiKey } from '../../auth/api-key.ts';
import type { Queryable, Sql } from '../../db/index.ts';
import { ApiError, notFound } from '../../errors.ts';
import { newId } from '../../ids.ts';
import { toPage } from '../../pagination.ts';
import type { ApiKey, KeyRole } from './model.ts';

/** Who a request acts for: the account every query is scoped to, and the key that proved it. */
export interface Principal {
  accountId: string;
  keyId: string;
  role: KeyRole;
}

interface KeyRow {
  id: string;
  account_id: string;
  name: string;
  prefix: string;
  key_hash: string;
  role: KeyRole;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

/** `last_used_at` moves at most this often per key, so reads do not turn into writes. */
export const LAST_USED_RESOLUTION_MS = 60_000;

function toApiKey(row: KeyRow): ApiKey {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    role: row.role,
    createdAt: row.created_at.toISOString(),
    lastUsedAt: row.last_used_at?.toISOString() ?? null,
    revokedAt: row.revoked_at?.toISOString() ?? null,
  };
}

/** API keys: minting (secret returned once), listing, revoking, and recognising them on requests. */
export class KeyService {
  constructor(private readonly sql: Sql) {}

  /**
   * Stores a key for `accountId` and returns it with its secret. `secret` is generated unless
   * given (the bootstrap key from ADMIN_API_KEY). Runs on `db` so callers can use a transaction.
   */
  async create(
    accountId: string,
    input: { name: string; role?: KeyRole; secret?: string },
    db: Queryable = this.sql,
  ): Promise<ApiKey & { secret: string }> {
    // The lookup prefix carries 72 random bits; a clash is all but impossible, but the unique
    // index would turn it into a 500, so draw again instead.
    for (let attempt = 0; ; attempt++) {
      const secret = input.secret ?? generateApiKey();
      const [row] = await db<KeyRow[]>`
        insert into api_keys (id, account_id, name, prefix, key_hash, role)
        values (${newId('key')}, ${accountId}, ${input.name}, ${apiKeyPrefix(secret)}, ${hashApiKey(secret)},
                ${input.role ?? 'member'})
        on conflict (prefix) do nothing
        returning *`;
      if (row) return { ...toApiKey(row), secret };
      if (input.secret || attempt >= 3)
        throw new ApiError(409, 'key_conflict', 'an API key with this prefix exists');
    }
  }

  async list(accountId: string, limit: number, cursor?: string) {
    const rows = await this.sql<KeyRow[]>`
      select * from api_keys
      where account_id = ${accountId} ${cursor ? this.sql`and id collate "C" < ${cursor}` : this.sql``}
      order by id collate "C" desc
      limit ${limit + 1}`;
    return toPage(rows, limit, toApiKey, (r) => r.id);
  }

  /**
   * Revokes a key of the account (idempotent). The account's last active admin key cannot be
   * revoked: nobody could mint keys for the account again.
   */
  async revoke(accountId: string, keyId: string): Promise<ApiKey> {
    return this.sql.begin(async (tx) => {
      // One revocation per account at a time, so two admins revoking each other cannot both win.
      await tx`select 1 from accounts where id = ${accountId} for update`;
      const [key] = await tx<KeyRow[]>`
        select * from api_keys where id = ${keyId} and account_id = ${accountId}`;
      if (!key) throw notFound('API key', keyId);
      if (key.revoked_at) return toApiKey(key);
      if (key.role === 'admin') {
        const [{ n }] = await tx<{ n: number }[]>`
          select count(*)::int as n from api_keys
          where account_id = ${accountId} and role = 'admin' and revoked_at is null`;
        if (n <= 1) {
          throw new ApiError(
            409,
            'last_admin_key',
            'this is the account’s last active admin key; create another admin key first',
          );
        }
      }
      const [row] = await tx<KeyRow[]>`
        update api_keys set revoked_at = now() where id = ${keyId} returning *`;
      return toApiKey(row);
    });
  }

  /**
   * The principal behind a presented secret, or null when no active key matches. Touches
   * `last_used_at` when it is older than {@link LAST_USED_RESOLUTION_MS}.
   */
  async authenticate(secret: string): Promise<Principal | null> {
    const [row] = await this.sql<Pick<KeyRow, 'id' | 'account_id' | 'role' | 'key_hash' | 'last_used_at'>[]>`
      select id, account_id, role, key_hash, last_used_at from api_keys
      where prefix = ${apiKeyPrefix(secret)} and revoked_at is null`;
    if (!row || !apiKeyMatches(secret, row.key_hash)) return null;
    if (!row.last_used_at || Date.now() - row.last_used_at.getTime() >= LAST_USED_RESOLUTION_MS) {
      await this.sql`update api_keys set last_used_at = now() where id = ${row.id}`;
    }
    return { accountId: row.account_id, keyId: row.id, role: row.role };
  }
}
