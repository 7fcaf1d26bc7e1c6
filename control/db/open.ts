import type { Config } from '../../core/config/index.ts';
import type { Logger } from '../../core/observability/index.ts';
import { connectDatabase, type Sql } from './client.ts';
import { EMBEDDED_POOL_MAX, startEmbeddedPostgres } from './embedded.ts';

export interface OpenDatabase {
  sql: Sql;
  kind: 'postgres' | 'embedded';
  /** Closes the pool, then the embedded server if there is one. */
  close(): Promise<void>;
}

/** DATABASE_URL when set; otherwise embedded PGlite, reached through the same driver. */
export async function openDatabase(config: Config, log: Logger): Promise<OpenDatabase> {
  if (config.DATABASE_URL) {
    const sql = connectDatabase(config.DATABASE_URL, config.DATABASE_POOL_MAX);
    return { sql, kind: 'postgres', close: () => sql.end({ timeout: 5 }) };
  }
  const started = performance.now();
  const embedded = await startEmbeddedPostgres(config.PGLITE_DATA_DIR);
  log.info(
    { dataDir: config.PGLITE_DATA_DIR, startMs: Math.round(performance.now() - started) },
    'embedded postgres ready',
  );
  const sql = connectDatabase(embedded.url, EMBEDDED_POOL_MAX);
  return {
    sql,
    kind: 'embedded',
    async close() {
      await sql.end({ timeout: 5 });
      await embedded.stop();
    },
  };
}
