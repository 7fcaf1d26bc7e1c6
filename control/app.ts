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
import { CallService, calls, DEFAULT_RING_TIMEOUT_SEC, OutboundDialing } from './modules/calls/index.ts';
import { CampaignService, campaigns } from './modules/campaigns/index.ts';
import { docs } from './modules/docs/index.ts';
import { health } from './modules/health/index.ts';
import { KeyService, keys } from './modules/keys/index.ts';
import { NumberService, numbers } from './modules/numbers/index.ts';
import { RealtimeService, realtime } from './modules/realtime/index.ts';
import type { ControlState } from './state.ts';
import { CampaignRunner, type CampaignRunnerOptions } from './workers/campaign-runner.ts';
import { Recorder, type RecorderOptions } from './workers/recorder.ts';

export interface ControlOptions {
  config: Config;
  log: Logger;
  sql: Sql;
  store: Store;
  databaseKind: 'postgres' | 'embedded';
  /**
   * The workers `start()` runs: options for each, or false to leave it off (a benchmark, or a
   * test that drives one by hand). Default: both, with their default options.
   */
  workers?: { recorder?: RecorderOptions | false; campaigns?: CampaignRunnerOptions | false };
}

/** The business logic behind the routes, one service per feature, built once per Control. */
export interface ControlServices {
  accounts: AccountService;
  keys: KeyService;
  agents: AgentService;
  numbers: NumberService;
  realtime: RealtimeService;
  outbound: OutboundDialing;
  calls: CallService;
  campaigns: CampaignService;
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
  const outbound = new OutboundDialing(state.config, state.store);
  return {
    accounts: new AccountService(state.sql),
    keys: new KeyService(state.sql),
    agents: agentService,
    numbers: new NumberService(state.sql, state.store),
    realtime: new RealtimeService(agentService, {
      secret: state.config.REALTIME_WS_SECRET,
      publicBaseUrl: state.config.PUBLIC_BASE_URL ?? `http://localhost:${state.config.PORT}`,
    }),
    outbound,
    calls: new CallService(state.sql, state.store, outbound),
    campaigns: new CampaignService(state.sql, outbound),
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
    .use(calls(auth, services.calls))
    .use(campaigns(auth, services.campaigns))
    .use(realtime(auth, services.realtime));
}

/**
 * The control plane: the Elysia API over Postgres, and its workers (the recorder, the campaign
 * runner). It serves at once; readiness stays 503 until `start()` has migrated the database,
 * and the workers run from `start()` to `close()`.
 */
export class Control implements Plane {
  readonly state: ControlState;
  readonly services: ControlServices;
  readonly api: ReturnType<typeof buildApi>;
  readonly recorder: Recorder | null;
  readonly campaignRunner: CampaignRunner | null;

  constructor(opts: ControlOptions) {
    const { workers, ...shared } = opts;
    this.state = {
      ...shared,
      version: pkg.version,
      migrations: 'pending',
      pingDatabase: () => pingDatabase(opts.sql),
    };
    this.services = createServices(this.state);
    this.api = buildApi(this.state, this.services);
    const { sql, store, log, config } = this.state;
    this.recorder =
      workers?.recorder === false
        ? null
        : new Recorder(
            { sql, store, log: log.child({ worker: 'recorder' }), campaigns: this.services.campaigns },
            workers?.recorder,
          );
    this.campaignRunner =
      workers?.campaigns === false
        ? null
        : new CampaignRunner(
            { sql, store, log: log.child({ worker: 'campaigns' }), outbound: this.services.outbound },
            {
              ...workers?.campaigns,
              // Ringing, the longest call, and the lease TTL: past that no outcome is coming.
              defaultOutcomeTimeoutMs:
                (DEFAULT_RING_TIMEOUT_SEC +
                  config.SESSION_MAX_DURATION_SEC +
                  config.TELEPHONY_SEMAPHORE_TTL_SEC) *
                1000,
            },
          );
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
    this.recorder?.start();
    this.campaignRunner?.start();
    return { migrationsApplied, bootstrap, mirrored };
  }

  /**
   * Stops the workers: the campaign runner lets dials in flight finish and record; the recorder
   * leaves an unfinished batch unacked for the next recorder. The database pool and the Store
   * belong to whoever opened them.
   */
  async close(): Promise<void> {
    await Promise.all([this.campaignRunner?.stop(), this.recorder?.stop()]);
  }
}
