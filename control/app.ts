import { Elysia } from 'elysia';
import type { Config } from '../core/config/index.ts';
import type { Logger } from '../core/observability/index.ts';
import type { Plane } from '../core/server/index.ts';
import type { Store } from '../core/store/index.ts';
import pkg from '../package.json' with { type: 'json' };
import { migrate, pingDatabase, type Sql } from './db/index.ts';
import { errorHandler } from './errors.ts';
import { health } from './modules/health/index.ts';
import type { ControlState } from './state.ts';

export interface ControlOptions {
  config: Config;
  log: Logger;
  sql: Sql;
  store: Store;
  databaseKind: 'postgres' | 'embedded';
}

/** Builds the `/v1` API: feature modules mounted under one prefix with one error shape. */
export function buildApi(state: ControlState) {
  return new Elysia({ prefix: '/v1' }).use(errorHandler).use(health(state));
}

/**
 * The control plane: the Elysia API over Postgres, plus (later) its workers. It serves at
 * once; readiness stays 503 until `start()` has migrated the database.
 */
export class Control implements Plane {
  readonly state: ControlState;
  readonly api: ReturnType<typeof buildApi>;

  constructor(opts: ControlOptions) {
    this.state = {
      ...opts,
      version: pkg.version,
      migrations: 'pending',
      pingDatabase: () => pingDatabase(opts.sql),
    };
    this.api = buildApi(this.state);
  }

  fetch(req: Request): Promise<Response> {
    return this.api.handle(req);
  }

  /** Migrates the database; the API reports ready afterwards. */
  async start(): Promise<void> {
    this.state.migrations = 'running';
    try {
      const applied = await migrate(this.state.sql);
      this.state.migrations = 'done';
      this.state.log.info({ applied }, 'migrations done');
    } catch (err) {
      this.state.migrations = 'failed';
      throw err;
    }
  }

  /** Stops workers. The database pool belongs to whoever opened it. */
  async close(): Promise<void> {}
}
