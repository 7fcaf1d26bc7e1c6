import { Elysia } from 'elysia';
import type { Config } from '../core/config/index.ts';
import type { Logger } from '../core/observability/index.ts';
import type { Plane } from '../core/server/index.ts';
import type { Store } from '../core/store/index.ts';
import pkg from '../package.json' with { type: 'json' };
import { FixedWindowRateLimiter, requireApiKey } from './auth/index.ts';
import { type Bootstrap, bootstrapAdmin } from './bootstrap.ts';
import { migrate, pingDatabase, type Sql } from './db/index.ts';
import { errorHandler } from './errors.ts';
import { AccountService, accounts } from './modules/accounts/index.ts';
import { AgentService, agents } from './modules/agents/index.ts';
import { docs } from './modules/docs/index.ts';
import { health } from './modules/health/index.ts';
import { KeyService, keys } from './modules/keys/index.ts';
import { NumberService, numbers } from './modules/numbers/index.ts';
import { RealtimeService, realtime } from './modules/realtime/index.ts';
import type { ControlState } from './state.ts';

export interface ControlOptions {
  config: Config;
  log: Logger;
  sql: Sql;
  store: Store;
  databaseKind: 'postgres' | 'embedded';
}

/** The business logic behind the routes, one service per feature, built once per Control. */
export interface ControlServices {
  accounts: AccountService;
  keys: KeyService;
  agents: AgentService;
  numbers: NumberService;
  realtime: RealtimeService;
  rateLimiter: FixedWindowRateLimiter;
}

/** What `start()` did: migrations applied, the bootstrap (first start only), Store entries rewritten. */
export interface StartResult {
  migrationsApplied: string[];
  bootstrap: Bootstrap | null;
  mirrored: { agents: number; numbers: number };
}

const API_PREFIX = '/v1';

export function createServices(state: ControlState): ControlServices {
  const agentService = new AgentService(state.sql, state.store);
  return {
    accounts: new AccountService(state.sql),
    keys: new KeyService(state.sql),
    agents: agentService,
    numbers: new NumberService(state.sql, state.store),
    realtime: new RealtimeService(agentService, {
      secret: state.config.REALTIME_WS_SECRET,
      publicBaseUrl: state.config.PUBLIC_BASE_URL ?? `http://localhost:${state.config.PORT}`,
    }),
    rateLimiter: new FixedWindowRateLimiter(state.store, state.config.API_RATE_LIMIT_PER_MIN),
  };
}

/**
 * Builds the `/v1` API: feature modules mounted under one prefix with one error shape. Request
 * bodies are not normalised: a field the schema does not name is a 422, never silently dropped.
 */
export function buildApi(state: ControlState, services: ControlServices = createServices(state)) {
  const auth = requireApiKey({ keys: services.keys, limiter: services.rateLimiter });
  return new Elysia({ prefix: API_PREFIX, normalize: false })
    .use(errorHandler(state.log))
    .use(docs({ version: state.version, prefix: API_PREFIX }))
    .use(health(state))
    .use(accounts(auth, services.accounts))
    .use(keys(auth, services.keys))
    .use(agents(auth, services.agents))
    .use(numbers(auth, services.numbers))
    .use(realtime(auth, services.realtime));
}

/**
 * The control plane: the Elysia API over Postgres, plus (later) its workers. It serves at
 * once; readiness stays 503 until `start()` has migrated the database.
 */
export class Control implements Plane {
  readonly state: ControlState;
  readonly services: ControlServices;
  readonly api: ReturnType<typeof buildApi>;

  constructor(opts: ControlOptions) {
    this.state = {
      ...opts,
      version: pkg.version,
      migrations: 'pending',
      pingDatabase: () => pingDatabase(opts.sql),
    };
    this.services = createServices(this.state);
    this.api = buildApi(this.state, this.services);
  }

  fetch(req: Request): Promise<Response> {
    return this.api.handle(req);
  }

  /**
   * Migrates the database; on an empty one creates the first account and its admin key; then
   * rewrites every agent and number route into the Store, which may be a fresh MemoryStore or a
   * flushed Redis. The caller prints `bootstrap.secret` when there is one.
   */
  async start(): Promise<StartResult> {
    const { log } = this.state;
    this.state.migrations = 'running';
    let migrationsApplied: string[];
    try {
      migrationsApplied = await migrate(this.state.sql);
      this.state.migrations = 'done';
      log.info({ applied: migrationsApplied }, 'migrations done');
    } catch (err) {
      this.state.migrations = 'failed';
      throw err;
    }
    const bootstrap = await bootstrapAdmin(this.state.sql, this.services, this.state.config.ADMIN_API_KEY);
    if (bootstrap) {
      log.info(
        { accountId: bootstrap.accountId, keyId: bootstrap.keyId, generated: bootstrap.secret !== undefined },
        'bootstrap account created',
      );
    }
    const mirrored = {
      agents: await this.services.agents.mirrorAll(),
      numbers: await this.services.numbers.mirrorAll(),
    };
    log.info(mirrored, 'store resynced');
    return { migrationsApplied, bootstrap, mirrored };
  }

  /** Stops workers. The database pool belongs to whoever opened it. */
  async close(): Promise<void> {}
}
