export { asJson, connectDatabase, pingDatabase, type Queryable, type Sql } from './client.ts';
export { EMBEDDED_POOL_MAX, type EmbeddedPostgres, startEmbeddedPostgres } from './embedded.ts';
export { loadMigrations, type Migration, migrate } from './migrate.ts';
export { type OpenDatabase, openDatabase } from './open.ts';
