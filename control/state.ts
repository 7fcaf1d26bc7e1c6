import type { Config } from '../core/config/index.ts';
import type { Logger } from '../core/observability/index.ts';
import type { Store } from '../core/store/index.ts';
import type { Sql } from './db/index.ts';

/** What the control plane's modules share: configuration, the database, the Store. */
export interface ControlState {
  config: Config;
  log: Logger;
  sql: Sql;
  store: Store;
  databaseKind: 'postgres' | 'embedded';
  version: string;
  migrations: 'pending' | 'running' | 'done' | 'failed';
  pingDatabase(): Promise<{ ok: boolean; latencyMs?: number; error?: string }>;
}
