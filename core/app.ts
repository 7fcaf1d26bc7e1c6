import type { Server } from 'bun';
import pkg from '../package.json' with { type: 'json' };
import { sharedRegistry, stopOfflineProviders } from './agent/default-registry.ts';
import { type ProviderEnv, type ProviderRegistry, providerEnvOf } from './agent/registry.ts';
import { safeEqualStrings } from './auth/constant-time.ts';
import { CallCapacity, keepLeasesAlive, type LeaseKeeper } from './capacity/index.ts';
import { type Config, logConfigAliases } from './config/index.ts';
import type { Logger } from './observability/log.ts';
import { metricsResponse } from './observability/metrics.ts';
import { metricsAuthorized, metricsUnauthorized } from './observability/metrics-auth.ts';
import { isMediaPath, MediaServer, type MediaSocketData } from './realtime/index.ts';
import type { Plane } from './server/index.ts';
import type { CallSession } from './session/call-session.ts';
import { parseCallCommand } from './session/commands.ts';
import { StoreHealthProbe } from './store/health-probe.ts';
import type { Store } from './store/index.ts';
import { keys } from './store/keys.ts';
import { basicCredentials } from './telephony/hook-auth.ts';
import { createTelnyxHangup, createTransfer } from './telephony/index.ts';
import { parseTelnyxPublicKey } from './telephony/signatures/telnyx.ts';
import {
  CallAdmission,
  JambonzWebhooks,
  TelnyxWebhooks,
  TwilioWebhooks,
} from './telephony/webhooks/index.ts';
import { jambonzTransferHook } from './telephony/webhooks/jambonz-transfer.ts';

export interface CoreOptions {
  config: Config;
  store: Store;
  log: Logger;
  /** Brains and providers; default: the shared offline registry. */
  registry?: ProviderRegistry;
  /** Provider keys and URLs; default: those of `config`. */
  providerEnv?: ProviderEnv;
  /** Hands a live provider call over to a number or SIP URI; absent: transfers are refused. */
  transfer?: (session: CallSession, to: string) => Promise<void>;
}

/** Paths the core plane answers; everything else belongs to control (`/v1/*`). */
export function isCorePath(pathname: string): boolean {
  return (
    pathname === '/health' ||
    pathname === '/health/live' ||
    pathname === '/metrics' ||
    pathname.startsWith('/telephony/') ||
    pathname.startsWith('/realtime/') ||
    pathname === '/v1/realtime/voice'
  );
}

type Route = (req: Request, server: Server<unknown>) => Response | undefined | Promise<Response | undefined>;

/**
 * Whether a request carries TELEPHONY_SHARED_SECRET: as `X-Telephony-Secret`, or as the password
 * of Basic auth (what providers' webhook settings can send). Both are compared in constant time.
 */
function carriesSharedSecret(req: Request, secret: string): boolean {
  const header = req.headers.get('x-telephony-secret');
  const password = basicCredentials(req)?.password ?? null;
  const byHeader = header !== null && safeEqualStrings(header, secret);
  const byBasic = password !== null && safeEqualStrings(password, secret);
  return byHeader || byBasic;
}

/**
 * Telnyx's webhooks, which cannot carry the shared secret (a TeXML application names a URL, no
 * header and no Basic auth). With signatures verified, their Ed25519 signature stands in for it:
 * only Telnyx holds the private key, and core holds nothing that could leak to forge one.
 */
const TELNYX_SIGNED_ROUTES = new Set(['POST /telephony/telnyx/voice', 'POST /telephony/telnyx/status']);

/** Longest a session's start waits for its command subscription before going live without it. */
const COMMANDS_READY_TIMEOUT_MS = 2_000;

/** Waits for a command subscription: subscribed, failed, or still pending after `timeoutMs`. */
async function commandsReady(
  subscription: Promise<unknown>,
  timeoutMs: number,
): Promise<'subscribed' | 'failed' | 'timed_out'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<'timed_out'>((resolve) => {
    timer = setTimeout(() => resolve('timed_out'), timeoutMs);
  });
  try {
    return await Promise.race([
      subscription.then(
        () => 'subscribed' as const,
        () => 'failed' as const,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The data plane: health, metrics, the media WebSockets (every protocol into one session
 * pipeline) and, with the telephony work, provider webhooks in the same route table. Talks
 * only to the Store and to providers, never to Postgres.
 */
export class Core implements Plane {
  readonly media: MediaServer;
  readonly capacity: CallCapacity;
  readonly admission: CallAdmission;
  /** The Store's state as last probed (every second): what `/health` and call admission read. */
  readonly storeHealth: StoreHealthProbe;
  readonly websocket: Plane['websocket'];
  private readonly routes = new Map<string, Route>();
  private readonly keepers = new Map<string, LeaseKeeper>();
  private readonly commandSubscriptions = new Map<string, Promise<() => Promise<void>>>();
  private readonly startedAt = Date.now();

  constructor(private readonly opts: CoreOptions) {
    const { config, store, log } = opts;
    if (!config.REALTIME_WS_SECRET) throw new Error('REALTIME_WS_SECRET must be set before core starts');
    logConfigAliases(config, log);
    if (!config.TELEPHONY_VERIFY_SIGNATURES) {
      log.warn({}, 'TELEPHONY_VERIFY_SIGNATURES=false: provider webhooks are NOT authenticated');
    }
    const ttlMs = config.TELEPHONY_SEMAPHORE_TTL_SEC * 1000;
    this.storeHealth = new StoreHealthProbe(store).start();
    this.capacity = new CallCapacity(store, {
      globalMax: config.TELEPHONY_GLOBAL_MAX_CONCURRENCY,
      perCampaignMax: config.TELEPHONY_PER_CAMPAIGN_MAX_CONCURRENCY,
      ttlMs,
    });
    this.admission = new CallAdmission({
      store,
      capacity: this.capacity,
      log,
      tokenSecret: config.REALTIME_WS_SECRET,
      defaultAgentId: config.DEFAULT_AGENT_ID,
      recordTtlMs: ttlMs,
      endedCallTtlMs: config.TELEPHONY_ENDED_CALL_TTL_SEC * 1000,
      endSession: (callId) => this.media.sessions.get(callId)?.close('provider_hangup'),
      storeUp: () => this.storeHealth.ok,
    });
    const transfer =
      opts.transfer ?? createTransfer(config, log, config.PUBLIC_BASE_URL, config.REALTIME_WS_SECRET);
    const telnyxHangup = createTelnyxHangup(config, log);
    this.media = new MediaServer({
      store: opts.store,
      log: opts.log,
      tokenSecrets: [config.REALTIME_WS_SECRET],
      realtimeApiKey: config.REALTIME_API_KEY,
      maxBufferedBytes: config.WS_MAX_BUFFERED_BYTES,
      maxMessageBytes: config.WS_MAX_MESSAGE_BYTES,
      idleTimeoutMs: config.SESSION_IDLE_TIMEOUT_SEC * 1000,
      maxDurationMs: config.SESSION_MAX_DURATION_SEC * 1000,
      startTimeoutMs: config.WS_START_TIMEOUT_MS,
      messageRate: { perSec: config.WS_MAX_MESSAGES_PER_SEC, burst: config.WS_MESSAGE_BURST },
      maxPendingPerAddress: config.WS_MAX_PENDING_PER_ADDRESS,
      // Native sessions take their leases at start (provider calls at their webhook).
      capacity: this.capacity,
      isAdmitted: async (callId) => (await store.get(keys.call(callId))) !== null,
      registry: opts.registry ?? sharedRegistry(),
      providerEnv: opts.providerEnv ?? providerEnvOf(config),
      defaultAgentId: config.DEFAULT_AGENT_ID,
      transfer,
      onSessionStarted: async (session) => {
        const subscription = store.subscribe(keys.callCommands(session.callId), (message) => {
          const command = parseCallCommand(message);
          if (!command) return log.warn({ callId: session.callId }, 'malformed call command dropped');
          session.timeline.append('command', { type: command.type });
          if (command.type === 'hangup') session.close('command', { detail: command.reason });
          else if (command.type === 'say') session.sayCommand(command.text);
          else session.transferCommand(command.to);
        });
        this.commandSubscriptions.set(session.callId, subscription);
        // Control answers a command nobody receives with 409 call_not_live: the session goes
        // live (listed, call.started) only once its channel is subscribed. A Store that cannot
        // subscribe costs the call its live commands, not the call itself.
        const ready = await commandsReady(subscription, COMMANDS_READY_TIMEOUT_MS);
        if (ready !== 'subscribed') {
          log.warn({ callId: session.callId, outcome: ready }, 'call commands unavailable');
        }
        if (session.protocol === 'native') return;
        this.keepers.set(
          session.callId,
          keepLeasesAlive(this.capacity, session.callId, {
            onLost: () => session.close('error', { detail: 'call leases lost' }),
            onError: (err) =>
              log.warn({ callId: session.callId, err: (err as Error).message }, 'lease renewal failed'),
          }),
        );
      },
      onSessionEnded: (session, reason) => {
        // A Telnyx call waits in <Pause> after its stream: end it with the session.
        if (session.protocol === 'telnyx') void telnyxHangup(session, reason);
        const unsubscribe = this.commandSubscriptions.get(session.callId);
        this.commandSubscriptions.delete(session.callId);
        void unsubscribe?.then((off) => off()).catch(() => {});
        if (session.protocol === 'native') return;
        const keeper = this.keepers.get(session.callId);
        this.keepers.delete(session.callId);
        void (async () => {
          await keeper?.stop();
          await this.admission.end(session.callId);
        })().catch((err: unknown) =>
          log.error({ callId: session.callId, err: (err as Error).message }, 'lease release failed'),
        );
      },
    });
    this.routeTelephony();
    this.websocket = this.media.websocket as Plane['websocket'] & { __data?: MediaSocketData };
    this.routes.set('GET /health', () => this.health());
    this.routes.set('GET /health/live', () => this.live());
    this.routes.set('GET /metrics', (req) =>
      metricsAuthorized(req, config.METRICS_API_KEY) ? metricsResponse() : metricsUnauthorized(),
    );
  }

  /**
   * The agent that answers calls nothing routes, and native sessions that name no agent. Set
   * at boot by `npm start` (its seeded demo agent) unless `DEFAULT_AGENT_ID` chose one.
   */
  get defaultAgentId(): string | undefined {
    return this.admission.defaultAgentId;
  }

  setDefaultAgentId(agentId: string): void {
    this.admission.defaultAgentId = agentId;
    this.media.defaultAgentId = agentId;
  }

  /** Provider webhooks and the capacity report, each behind its signature or key check. */
  private routeTelephony(): void {
    const { config, log } = this.opts;
    const verify = config.TELEPHONY_VERIFY_SIGNATURES;
    const wsBaseUrl = config.PUBLIC_WS_BASE_URL ?? config.PUBLIC_BASE_URL.replace(/^http/, 'ws');
    const split = (v: string | undefined) =>
      v
        ? v
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : [];
    const twilio = new TwilioWebhooks({
      admission: this.admission,
      log,
      authTokens: split(config.TWILIO_AUTH_TOKEN),
      verify,
      publicBaseUrl: config.PUBLIC_BASE_URL,
      wsBaseUrl,
      forwarderSecret: config.TELEPHONY_FORWARDER_SECRET,
    });
    const jambonz = new JambonzWebhooks({
      admission: this.admission,
      log,
      secrets: split(config.JAMBONZ_WEBHOOK_SECRET),
      verify,
      wsBaseUrl,
    });
    const telnyx = new TelnyxWebhooks({
      admission: this.admission,
      log,
      publicKey: config.TELNYX_PUBLIC_KEY ? parseTelnyxPublicKey(config.TELNYX_PUBLIC_KEY) : null,
      verify,
      wsBaseUrl,
      maxDurationSec: config.SESSION_MAX_DURATION_SEC,
    });
    this.routes.set('POST /telephony/twilio/voice', (req) => twilio.voice(req, new URL(req.url)));
    this.routes.set('POST /telephony/twilio/status', (req) => twilio.status(req, new URL(req.url)));
    this.routes.set('POST /telephony/jambonz/call', (req) => jambonz.call(req));
    this.routes.set('POST /telephony/jambonz/status', (req) => jambonz.status(req));
    this.routes.set('POST /telephony/jambonz/transfer', (req) =>
      jambonzTransferHook(req, {
        tokenSecrets: [config.REALTIME_WS_SECRET!],
        secrets: split(config.JAMBONZ_WEBHOOK_SECRET),
        verify,
        log,
      }),
    );
    this.routes.set('POST /telephony/telnyx/voice', (req) => telnyx.voice(req, new URL(req.url)));
    this.routes.set('POST /telephony/telnyx/status', (req) => telnyx.status(req));
    this.routes.set('GET /telephony/capacity', (req) => this.capacityReport(req));
    const secret = config.TELEPHONY_SHARED_SECRET;
    if (secret) {
      for (const [key, route] of this.routes) {
        if (!key.includes(' /telephony/')) continue;
        // The Telnyx route refuses (403) whatever its signature does not verify.
        if (verify && TELNYX_SIGNED_ROUTES.has(key)) continue;
        this.routes.set(key, (req, server) => {
          if (carriesSharedSecret(req, secret)) return route(req, server);
          log.warn({ route: key }, 'telephony request without the shared secret refused');
          return Response.json(
            {
              error: {
                code: 'unauthorized',
                message: 'send TELEPHONY_SHARED_SECRET as X-Telephony-Secret or as the Basic auth password',
              },
            },
            { status: 401, headers: { 'www-authenticate': 'Basic realm="telephony"' } },
          );
        });
      }
    }
  }

  /** `GET /telephony/capacity` (Bearer CORE_API_KEY): live counts against their limits. */
  private async capacityReport(req: Request): Promise<Response> {
    const key = this.opts.config.CORE_API_KEY;
    if (!key)
      return Response.json(
        { error: { code: 'not_found', message: 'set CORE_API_KEY to enable' } },
        { status: 404 },
      );
    const given = req.headers.get('authorization')?.replace(/^Bearer\s+/i, '') ?? '';
    if (!safeEqualStrings(given, key)) {
      return Response.json(
        { error: { code: 'unauthorized', message: 'Bearer CORE_API_KEY required' } },
        { status: 401 },
      );
    }
    const url = new URL(req.url);
    const list = (name: string) =>
      url.searchParams
        .getAll(name)
        .flatMap((v) => v.split(','))
        .filter(Boolean);
    const counts = await this.capacity.counts({ campaigns: list('campaign'), agents: list('agent') });
    return Response.json({ ...counts, activeSessionsHere: this.media.activeSessions });
  }

  fetch(req: Request, server: Server<unknown>): Response | undefined | Promise<Response | undefined> {
    const url = new URL(req.url);
    const { pathname } = url;
    if (req.method === 'GET' && isMediaPath(pathname)) return this.media.upgrade(req, server, url);
    const route = this.routes.get(`${req.method} ${pathname}`);
    if (route) return route(req, server);
    return Response.json(
      { error: { code: 'not_found', message: `no route for ${req.method} ${pathname}` } },
      { status: 404 },
    );
  }

  /**
   * 200 while the Store answers, 503 otherwise, naming each dependency and its state. Answered
   * from the last probe, never by waiting on the Store: a down or stale probe is a 503 at once.
   */
  /**
   * Liveness, for the load balancer: 200 while this process serves calls, 503 once it drains.
   * A Store outage does not fail it (live calls survive one; replacing the task would end them);
   * `/health` reports dependencies for alarms and operators.
   */
  live(): Response {
    const draining = this.media.isDraining;
    return Response.json(
      { status: draining ? 'draining' : 'ok', service: 'core', activeSessions: this.media.activeSessions },
      { status: draining ? 503 : 200 },
    );
  }

  async health(): Promise<Response> {
    await this.storeHealth.ready();
    const store = this.storeHealth.current();
    const ok = store.ok;
    return Response.json(
      {
        status: ok ? 'ok' : 'degraded',
        service: 'core',
        version: pkg.version,
        uptimeSec: Math.round((Date.now() - this.startedAt) / 1000),
        activeSessions: this.media.activeSessions,
        dependencies: { store },
      },
      { status: ok ? 200 : 503 },
    );
  }

  /** Stops admitting new calls and lets live ones finish, up to `graceMs`. */
  async drain(graceMs: number): Promise<void> {
    this.opts.log.info({ activeSessions: this.media.activeSessions, graceMs }, 'core draining');
    await this.media.drain(graceMs);
    // Status updates kept through a Store outage: one last try, then say what is lost.
    const unsent = await this.admission.statuses.flush();
    this.admission.statuses.stop();
    if (unsent > 0) this.opts.log.error({ pending: unsent }, 'buffered call statuses lost at shutdown');
    this.storeHealth.stop();
    stopOfflineProviders();
  }
}
