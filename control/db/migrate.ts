import { readdirSync, readFileSync } from 'node:fs';
import type { Sql } from 'postgres';

/** Arbitrary but fixed: the advisory lock every instance takes before migrating. */
const MIGRATION_LOCK_ID = 7_314_201;

const MIGRATIONS_DIR = new URL('./migrations/', import.meta.url);

export interface Migration {
  version: string;
  sql: string;
}

/** The SQL files in `control/db/migrations/`, ordered by their numeric prefix (`0001_init.sql`). */
export function loadMigrations(dir: URL = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: f.replace(/\.sql$/, ''), sql: readFileSync(new URL(f, dir), 'utf8') }));
}

/**
 * Applies the migrations not applied yet, each in its own transaction, in order. An advisory
 * lock on one reserved connection keeps two instances booting at once from racing; the second
 * waits, then finds nothing left to do. Returns the versions it applied.
 */
export async function migrate(sql: Sql, migrations: Migration[] = loadMigrations()): Promise<string[]> {
  const conn = await sql.reserve();
  try {
    await conn`select pg_advisory_lock(${MIGRATION_LOCK_ID})`;
    try {
      await conn`create table if not exists schema_migrations (
        version text primary key,
        applied_at timestamptz not null default now()
      )`;
      const done = new Set(
        (await conn<{ version: string }[]>`select version from schema_migrations`).map((r) => r.version),
      );
      const applied: string[] = [];
      for (const m of migrations) {
        if (done.has(m.version)) continue;
        await conn.unsafe('begin');
        try {
          await conn.unsafe(m.sql);
          await conn`insert into schema_migrations (version) values (${m.version})`;
          await conn.unsafe('commit');
        } catch (err) {
          await conn.unsafe('rollback');
          throw new Error(`migration ${m.version} failed: ${(err as Error).message}`);
        }
        applied.push(m.version);
      }
      return applied;
    } finally {
      await conn`select pg_advisory_unlock(${MIGRATION_LOCK_ID})`;
    }
  } finally {
    conn.release();
  }
}
