import type { Server } from 'bun';
import { Elysia } from 'elysia';
import { providerEnvOf } from '../core/agent/registry.ts';
import { type Config, logConfigAliases } from '../core/config/index.ts';
import type { Logger } from '../core/observability/index.ts';
import type { Plane } from '../core/server/index.ts';
import type { Store } from '../core/store/index.ts';
import pkg from '../package.json' with { type: 'json' };
import { FailedAuthLimiter, FixedWindowRateLimiter, requireApiKey } from './auth/index.ts';
import { adminKeyMatches, type Bootstrap, bootstrapAdmin } from './bootstrap.ts';
import { migrate, pingDatabase, type Sql } from './db/index.ts';
import { errorHandler } from './errors.ts';
import { rememberPeer } from './http/client-address.ts';
import { requestGuards } from './http/request-guards.ts';
import { type BodyPolicies, RouteTable } from './http/route-table.ts';
import { AccountService, accounts } from './modules/accounts/index.ts';
import { AgentService, agents, readinessWith } from './modules/agents/index.ts';
import { type CallStreamOptions, CallStreams, callEvents, isCallStreamPath } from './modules/calls/events.ts';
import { CallService, calls, DEFAULT_RING_TIMEOUT_SEC, OutboundDialing } from './modules/calls/index.ts';
import { CampaignService, campaigns } from './modules/campaigns/index.ts';
import { ConsoleSite, isConsolePath } from './modules/console/index.ts';
import { docs } from './modules/docs/index.ts';
import { health } from './modules/health/index.ts';
import { KeyService, keys } from './modules/keys/index.ts';
import { NumberService, numbers } from './modules/numbers/index.ts';
import { RealtimeService, realtime } from './modules/realtime/index.ts';
import { inboundTriggers, TriggerService, triggers } from './modules/triggers/index.ts';
import { type DeliveryPolicy, WebhookService, webhooks } from './modules/webhooks/index.ts';
import type { ControlState } from './state.ts';
import { CampaignRunner, type CampaignRunnerOptions } from './workers/campaign-runner.ts';
import { Dispatcher, type DispatcherOptions } from './workers/dispatcher.ts';
import { OrphanSweeper, type OrphanSweeperOptions } from './workers/orphan-sweeper.ts';
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
  workers?: {
    recorder?: RecorderOptions | false;
    campaigns?: CampaignRunnerOptions | false;
    /** The orphan sweeper; its lease TTL and longest call come from the config unless given. */
    sweeper?: Partial<OrphanSweeperOptions> | false;
    /** The webhook dispatcher. */
    dispatcher?: DispatcherOptions | false;
  };
  /** Overrides of the webhook delivery rules the config sets (tests: short retries, a resolver). */
  webhookPolicy?: Partial<DeliveryPolicy>;
  /**
   * The clock of the request limits (per key, failed authentications per address) and of inbound
   * triggers' signature timestamps; tests move it.
   */
  now?: () => number;
  /** The server-sent call streams' heartbeat and limits (tests: a short heartbeat). */
  callStreams?: CallStreamOptions;
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
  /** The open server-sent call streams (`GET /v1/calls/events`, `…/{id}/events`). */
  callStreams: CallStreams;
  campaigns: CampaignService;
  webhooks: WebhookService;
  triggers: TriggerService;
  rateLimiter: FixedWindowRateLimiter;
  failedAuth: FailedAuthLimiter;
}

/** What `start()` did: migrations applied, the bootstrap (first start only), Store entries rewritten. */
export interface StartResult {
  migrationsApplied: string[];
  bootstrap: Bootstrap | null;
  mirrored: { agents: number; numbers: number };
}

const API_PREFIX = '/v1';

/** Failed authentications a client address may make per minute before it gets 429. */
export const FAILED_AUTH_LIMIT_PER_MIN = 20;

/** Bytes the contact routes read: 10 000 contacts with a few variables, as JSON or CSV. */
const CONTACTS_MAX_BODY_BYTES = 8 * 1024 * 1024;

/** Routes whose bodies differ from the default (1 MB of JSON). */
const BODY_POLICIES: BodyPolicies = {
  'POST /campaigns': { maxBodyBytes: CONTACTS_MAX_BODY_BYTES },
  'POST /campaigns/:id/contacts': { maxBodyBytes: CONTACTS_MAX_BODY_BYTES, otherContentTypes: ['text/csv'] },
};

/** The webhook delivery rules of a deployment, from its config. */
export function webhookPolicyOf(config: Config, overrides: Partial<DeliveryPolicy> = {}): DeliveryPolicy {
  return {
    timeoutMs: config.WEBHOOK_TIMEOUT_MS,
    maxAttempts: config.WEBHOOK_MAX_ATTEMPTS,
    retryBaseMs: 5_000,
    retryMaxMs: 3_600_000,
    disableAfterFailures: config.WEBHOOK_DISABLE_AFTER_FAILURES,
    allowPrivate: config.WEBHOOK_ALLOW_PRIVATE_URLS,
    ...overrides,
  };
}

export function createServices(
  state: ControlState,
  now: () => number = Date.now,
  webhookPolicy: DeliveryPolicy = webhookPolicyOf(state.config),
  callStreams: CallStreamOptions = {},
): ControlServices {
  const agentService = new AgentService(state.sql, state.store, readinessWith(providerEnvOf(state.config)));
  const outbound = new OutboundDialing(state.config, state.store);
  const callService = new CallService(state.sql, state.store, outbound);
  const campaignService = new CampaignService(state.sql, outbound);
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
    calls: callService,
    callStreams: new CallStreams(
      { sql: state.sql, store: state.store, log: state.log.child({ module: 'call-streams' }) },
      callStreams,
    ),
    campaigns: campaignService,
    webhooks: new WebhookService(state.sql, webhookPolicy, state.log.child({ module: 'webhooks' })),
    triggers: new TriggerService(state.sql, {
      calls: callService,
      campaigns: campaignService,
      outbound,
      log: state.log.child({ module: 'triggers' }),
      publicBaseUrl: state.config.PUBLIC_BASE_URL ?? `http://localhost:${state.config.PORT}`,
      now,
    }),
    rateLimiter: new FixedWindowRateLimiter(state.store, state.config.API_RATE_LIMIT_PER_MIN, 60_000, now),
    failedAuth: new FailedAuthLimiter(FAILED_AUTH_LIMIT_PER_MIN, 60_000, now),
  };
}

/**
 * Builds the `/v1` API: feature modules mounted under one prefix with one error shape, behind
 * the request guards (API key, limits, body rules) that run before any body is parsed. Request
 * bodies are not normalised: a field the schema does not name is a 422, never silently dropped.
 */
export function buildApi(state: ControlState, services: ControlServices = createServices(state)) {
  const auth = requireApiKey({ keys: services.keys, limiter: services.rateLimiter });
  const routes = new RouteTable();
  const guards = requestGuards({
    keys: services.keys,
    limiter: services.rateLimiter,
    failedAuth: services.failedAuth,
    routes,
    prefix: API_PREFIX,
  });
  const api = new Elysia({ prefix: API_PREFIX, normalize: false })
    .use(errorHandler(state.log))
    .use(guards)
    .use(docs({ version: state.version, prefix: API_PREFIX }))
    .use(health(state))
    .use(accounts(auth, services.accounts))
    .use(keys(auth, services.keys))
    .use(agents(auth, services.agents))
    .use(numbers(auth, services.numbers))
    .use(calls(auth, services.calls))
    .use(callEvents(auth, services.callStreams))
    .use(campaigns(auth, services.campaigns))
    .use(realtime(auth, services.realtime))
    .use(webhooks(auth, services.webhooks))
    .use(triggers(auth, services.triggers));
  routes.load(api.routes, API_PREFIX, BODY_POLICIES);
  return api;
}

/**
 * Builds `/webhooks/*`: requests that authenticate with their own signature, not an API key
 * (inbound triggers), with the API's error shape. The ALB sends `/webhooks/*` to control.
 */
export function buildInbound(state: ControlState, services: ControlServices) {
  return new Elysia({ normalize: false })
    .use(errorHandler(state.log))
    .use(inboundTriggers(services.triggers, services));
}

/**
 * The control plane: the Elysia API over Postgres, and its workers (the recorder, the campaign
 * runner, the orphan sweeper, the webhook dispatcher). It serves at once; readiness stays 503 until `start()` has migrated the database,
 * and the workers run from `start()` to `close()`.
 */
export class Control implements Plane {
  readonly state: ControlState;
  readonly services: ControlServices;
  readonly api: ReturnType<typeof buildApi>;
  readonly inbound: ReturnType<typeof buildInbound>;
  readonly recorder: Recorder | null;
  readonly campaignRunner: CampaignRunner | null;
  readonly orphanSweeper: OrphanSweeper | null;
  readonly dispatcher: Dispatcher | null;
  /** The web console at `/` (control/console/), bundled on first request. */
  readonly console = new ConsoleSite();

  constructor(opts: ControlOptions) {
    const { workers, now: _, webhookPolicy: __, callStreams: ___, ...shared } = opts;
    this.state = {
      ...shared,
      version: pkg.version,
      migrations: 'pending',
      pingDatabase: () => pingDatabase(opts.sql),
    };
    const policy = webhookPolicyOf(opts.config, opts.webhookPolicy);
    this.services = createServices(this.state, opts.now, policy, opts.callStreams);
    this.api = buildApi(this.state, this.services);
    this.inbound = buildInbound(this.state, this.services);
    const { sql, store, log, config } = this.state;
    logConfigAliases(config, log);
    const timelineTtlMs = config.CALL_TIMELINE_TTL_SEC * 1000;
    // Ringing, the longest call, and the lease TTL: past that no outcome is coming.
    const longestCallMs =
      (DEFAULT_RING_TIMEOUT_SEC + config.SESSION_MAX_DURATION_SEC + config.TELEPHONY_SEMAPHORE_TTL_SEC) *
      1000;
    this.recorder =
      workers?.recorder === false
        ? null
        : new Recorder(
            { sql, store, log: log.child({ worker: 'recorder' }), campaigns: this.services.campaigns },
            { timelineTtlMs, ...workers?.recorder },
          );
    this.orphanSweeper =
      workers?.sweeper === false
        ? null
        : new OrphanSweeper(
            { sql, store, log: log.child({ worker: 'sweeper' }) },
            {
              leaseTtlMs: config.TELEPHONY_SEMAPHORE_TTL_SEC * 1000,
              maxCallMs: longestCallMs,
              timelineTtlMs,
              ...workers?.sweeper,
            },
          );
    this.dispatcher =
      workers?.dispatcher === false
        ? null
        : new Dispatcher({ sql, log: log.child({ worker: 'dispatcher' }) }, policy, workers?.dispatcher);
    this.campaignRunner =
      workers?.campaigns === false
        ? null
        : new CampaignRunner(
            { sql, store, log: log.child({ worker: 'campaigns' }), outbound: this.services.outbound },
            { ...workers?.campaigns, defaultOutcomeTimeoutMs: longestCallMs },
          );
  }

  /** Serves a request; with `server`, the client's address counts toward per-address limits. */
  fetch(req: Request, server?: Server<unknown>): Promise<Response> {
    rememberPeer(req, server?.requestIP(req)?.address);
    const { pathname } = new URL(req.url);
    if (isConsolePath(pathname)) return this.console.handle(req);
    if (pathname.startsWith('/webhooks/')) return this.inbound.handle(req);
    // An event stream is quiet between heartbeats, longer than Bun's idle timeout allows.
    if (server && isCallStreamPath(pathname)) server.timeout(req, 0);
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
    // ADMIN_API_KEY counts only on an empty database: say so when it opens nothing here.
    const adminKey = this.state.config.ADMIN_API_KEY;
    if (!bootstrap && adminKey && !(await adminKeyMatches(this.state.sql, adminKey))) {
      log.warn(
        { recovery: 'npm run admin -- create-key', runbook: 'docs/RUNBOOK.md#lost-admin-key' },
        'ADMIN_API_KEY matches no active key of this database and is ignored',
      );
    }
    const mirrored = {
      agents: await this.services.agents.mirrorAll(),
      numbers: await this.services.numbers.mirrorAll(),
    };
    log.info(mirrored, 'store resynced');
    this.recorder?.start();
    this.campaignRunner?.start();
    this.orphanSweeper?.start();
    this.dispatcher?.start();
    return { migrationsApplied, bootstrap, mirrored };
  }

  /**
   * Ends the open call streams, and stops the workers: the campaign runner lets dials in flight
   * finish and record; the recorder leaves an unfinished batch unacked for the next recorder.
   * The database pool and the Store belong to whoever opened them.
   */
  async close(): Promise<void> {
    await this.services.callStreams.close();
    await Promise.all([
      this.campaignRunner?.stop(),
      this.recorder?.stop(),
      this.orphanSweeper?.stop(),
      this.dispatcher?.stop(),
    ]);
  }
}
