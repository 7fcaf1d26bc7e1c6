import type { Server, ServerWebSocket, WebSocketHandler } from 'bun';
import type { CallInfo } from '../agent/agent.ts';
import { UnavailableAgent } from '../agent/brains/unavailable.ts';
import type { AgentRecord } from '../agent/config.ts';
import { sharedRegistry } from '../agent/default-registry.ts';
import {
  type AgentBuild,
  type ProviderEnv,
  type ProviderRegistry,
  UnavailableError,
} from '../agent/registry.ts';
import { loadAgentConfig } from '../agent/resolve.ts';
import { type FrameClock, sharedFrameClock } from '../audio/index.ts';
import { safeEqualStrings } from '../auth/constant-time.ts';
import { type TokenClaims, verifyToken } from '../auth/tokens.ts';
import { type CallCapacity, leaseRecordKey } from '../capacity/call-capacity.ts';
import { keepLeasesAlive, type LeaseKeeper } from '../capacity/lease-keeper.ts';
import type { Logger } from '../observability/log.ts';
import { CallSession, type EndReason } from '../session/call-session.ts';
import { keys } from '../store/keys.ts';
import type { Store } from '../store/store.ts';
import type { InboundFrame, StartFrame, WireCodec, WireProtocol } from '../wire/frames.ts';
import { createCodec, JAMBONZ_SUBPROTOCOL } from '../wire/index.ts';
import { clientAddress } from './client-address.ts';
import { FRAME_SAMPLE_EVERY, frameProcessingSeconds, mediaMetrics } from './metrics.ts';
import { callNamespace, nativeCallId } from './native-call-id.ts';
import { MessageRateLimiter } from './rate-limit.ts';
import { CloseCode, WsTransport } from './ws-transport.ts';

/** Subprotocol a native client offers (and we select) next to its key. */
export const NATIVE_SUBPROTOCOL = 'sipai.v1';
/** Prefix of the subprotocol that carries the API key: `sipai.key.<key>`. */
export const NATIVE_KEY_SUBPROTOCOL_PREFIX = 'sipai.key.';

export interface MediaServerOptions {
  store: Store;
  log: Logger;
  /** Secrets of stream/realtime tokens (first signs, all verify: rotation). */
  tokenSecrets: string[];
  /** `REALTIME_API_KEY`: admits native clients offering it as a subprotocol. */
  realtimeApiKey?: string;
  maxBufferedBytes: number;
  /** Largest message accepted; a larger one closes the socket with 1009. */
  maxMessageBytes: number;
  idleTimeoutMs: number;
  maxDurationMs: number;
  /**
   * A socket whose session has not started this long after it opened is closed, whatever it
   * sends: 1008 when it sent no `start`, 1013 when its start is still being set up. Default 5 s.
   */
  startTimeoutMs?: number;
  /**
   * Messages one socket may send: `perSec` sustained, `burst` at once. The excess is counted and
   * dropped unparsed; a socket dropping more than `perSec` in a second is closed with 1008.
   * Default 100/s with a burst of 200 (20 ms audio is 50/s).
   */
  messageRate?: { perSec: number; burst: number };
  /**
   * Sockets from one client address that have not sent a valid `start` yet; more are refused
   * with 429 at the upgrade, before any WebSocket exists. Default 64.
   */
  maxPendingPerAddress?: number;
  /**
   * Call leases of native sessions (provider calls take theirs at their webhook): a native
   * start takes a global slot and its agent's, or is refused with `at_capacity` and 1013.
   * Whoever runs `onSessionStarted`/`onSessionEnded` keeps them alive and releases them.
   */
  capacity?: CallCapacity;
  clock?: FrameClock;
  /** Brains and providers by name; default: the shared offline registry. */
  registry?: ProviderRegistry;
  /** Provider keys and base URLs (the deployment's environment). */
  providerEnv?: ProviderEnv;
  /** The agent of native sessions that name none. */
  defaultAgentId?: string;
  /** Hands a provider call over to `to` (Twilio/Jambonz/Telnyx REST); absent: no transfers. */
  transfer?: (session: CallSession, to: string) => Promise<void>;
  /**
   * Told when a session starts, e.g. to keep the call's leases alive. Awaited before the session
   * is listed or announces `call.started`, so whatever it sets up (the call's command
   * subscription) is live by the time anyone can see the call; a rejection ends the call.
   */
  onSessionStarted?: (session: CallSession) => void | Promise<void>;
  /** Told when a session ends, e.g. to release the call's leases. */
  onSessionEnded?: (session: CallSession, reason: EndReason) => void;
  /**
   * Whether a provider call was admitted (and not yet ended); a stream for any other call is
   * refused. Default: any call with a valid stream token.
   */
  isAdmitted?: (callId: string) => Promise<boolean>;
}

/** Per-socket state, attached at upgrade. */
export interface MediaSocketData {
  protocol: WireProtocol;
  codec: WireCodec;
  transport: WsTransport | null;
  session: CallSession | null;
  /** Native clients authenticated at upgrade: by key, or by a realtime token's claims. */
  nativeAuth: { byKey: true } | { byKey: false; claims: TokenClaims } | null;
  /** The client's address while it counts against its pending cap (until it sends `start` or closes). */
  pendingAddress: string | null;
  rate: MessageRateLimiter;
  /** Closed for flooding; later messages already in flight are only counted. */
  rateClosed: boolean;
  /** Token from the URL query, for providers that can carry one there. */
  queryToken: string | null;
  /** Rate of outbound L16 on a Jambonz stream (the listen verb's bidirectional rate). */
  jambonzOutRate: number;
  openedAt: number;
  starting: boolean;
  /** Frames that arrived while the session was being set up, replayed in order. */
  early: InboundFrame[];
  valid: number;
  garbage: number;
}

type MediaSocket = ServerWebSocket<MediaSocketData>;

/** What a start may open: its call id and agent, and for a token, the account the agent must be in. */
interface StartGrant {
  agentId: string;
  callId: string;
  /** Set for realtime tokens: the agent's account must be this (null: an agent of no account). */
  accountId?: string | null;
}

const PROVIDER_PATHS: Record<string, WireProtocol> = {
  '/telephony/twilio/stream': 'twilio',
  '/telephony/jambonz/stream': 'jambonz',
  '/telephony/telnyx/stream': 'telnyx',
};
const NATIVE_PATHS = new Set(['/realtime/voice', '/v1/realtime/voice']);
const MAX_EARLY_FRAMES = 100;
/** Unparsed messages tolerated before a socket is judged hostile (and more than its valid ones). */
const GARBAGE_LIMIT = 50;
const DEFAULT_START_TIMEOUT_MS = 5000;
const DEFAULT_MESSAGE_RATE = { perSec: 100, burst: 200 };
const DEFAULT_MAX_PENDING_PER_ADDRESS = 64;
/** Messages a socket may send at once before its `start` (providers send one or two first). */
const PRE_START_BURST = 20;
/** Sockets whose address nobody can tell (no peer address) share this one. */
const UNKNOWN_ADDRESS = 'unknown';

/** Whether this path is one of the media WebSocket endpoints. */
export function isMediaPath(pathname: string): boolean {
  return pathname in PROVIDER_PATHS || NATIVE_PATHS.has(pathname);
}

/**
 * The subprotocol to answer a native client with: `sipai.v1` when offered; the key itself only
 * when it is the one protocol offered (`sipai.key.<key>`, or the raw key as `wscat -s <key>`
 * sends it: a browser or `ws` client fails a handshake whose offer goes unanswered);
 * none when nothing was offered. Undefined: refuse, since otherwise Bun would answer with the
 * first protocol offered, which may be the key.
 */
function selectNativeSubprotocol(offered: string[]): string | null | undefined {
  if (offered.length === 0) return null;
  if (offered.includes(NATIVE_SUBPROTOCOL)) return NATIVE_SUBPROTOCOL;
  if (offered.length === 1) return offered[0]!;
  return undefined;
}

function refuse(status: number, code: string, message: string, headers?: Record<string, string>): Response {
  return Response.json({ error: { code, message } }, { status, headers });
}

/**
 * The media WebSockets of every protocol behind one session pipeline. The codec is picked
 * once, at upgrade, from the path; native clients authenticate before the upgrade, provider
 * streams with the signed token their `start` carries. Bad input is counted and dropped, a
 * hostile or slow socket is closed with a proper code, and no socket can hurt another.
 */
export class MediaServer {
  readonly sessions = new Map<string, CallSession>();
  /** The agent of native sessions that name none (`npm start` sets its demo agent). */
  defaultAgentId: string | undefined;
  private draining = false;
  private readonly pending = new Set<MediaSocket>();
  /** Not-yet-started sockets per client address (the per-address cap). */
  private readonly pendingByAddress = new Map<string, number>();
  /** Calls whose start is being set up on this node (not yet in `sessions`). */
  private readonly startingIds = new Set<string>();
  /** Lease renewal of live native calls (provider calls' leases are their webhook's). */
  private readonly keepers = new Map<string, LeaseKeeper>();
  private readonly startTimeoutMs: number;
  private readonly messageRate: { perSec: number; burst: number };
  private readonly maxPendingPerAddress: number;
  private readonly sweeper: ReturnType<typeof setInterval>;
  private readonly clock: FrameClock;
  private messageCount = 0;
  /** Bun's WebSocket handlers for every media socket. */
  readonly websocket: WebSocketHandler<MediaSocketData>;

  constructor(private readonly opts: MediaServerOptions) {
    this.clock = opts.clock ?? sharedFrameClock();
    this.defaultAgentId = opts.defaultAgentId;
    this.startTimeoutMs = opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    this.messageRate = opts.messageRate ?? DEFAULT_MESSAGE_RATE;
    this.maxPendingPerAddress = opts.maxPendingPerAddress ?? DEFAULT_MAX_PENDING_PER_ADDRESS;
    // Often enough that a socket never outlives its start deadline by more than a quarter of it.
    const sweepMs = Math.min(1000, Math.max(25, Math.floor(this.startTimeoutMs / 4)));
    this.sweeper = setInterval(() => this.sweep(), sweepMs);
    this.sweeper.unref?.();
    /** Bun's WebSocket handlers for every media socket. */
    this.websocket = {
      open: (ws) => {
        const metrics = mediaMetrics[ws.data.protocol];
        ws.data.transport = new WsTransport(
          ws as ServerWebSocket<unknown>,
          ws.data.codec,
          metrics,
          opts.maxBufferedBytes,
        );
        this.pending.add(ws);
      },
      message: (ws, message) => {
        const verdict = ws.data.rate.take();
        if (verdict !== 'accept') return this.onRateExceeded(ws, verdict);
        if (++this.messageCount % FRAME_SAMPLE_EVERY !== 0) return this.onMessage(ws, message);
        const started = performance.now();
        this.onMessage(ws, message);
        frameProcessingSeconds.observe((performance.now() - started) / 1000);
      },
      close: (ws) => {
        this.pending.delete(ws);
        this.releasePending(ws.data);
        ws.data.transport?.markClosed();
        ws.data.session?.close('socket_closed', { socketClosed: true });
      },
      // Bun answers pings and sends its own (sendPings), and closes a socket idle this long.
      idleTimeout: 60,
      sendPings: true,
      // Oversized messages close the socket with 1009 before they reach us.
      maxPayloadLength: opts.maxMessageBytes,
      backpressureLimit: opts.maxBufferedBytes * 4,
      closeOnBackpressureLimit: false,
      perMessageDeflate: false,
    };
  }

  /** Upgrades a media request, or answers why not (401/400/429/503) before any WebSocket exists. */
  upgrade(req: Request, server: Server<unknown>, url: URL): Response | undefined {
    if (this.draining) return refuse(503, 'draining', 'this node is shutting down; retry on another');
    if (req.headers.get('upgrade')?.toLowerCase() !== 'websocket') {
      return refuse(426, 'upgrade_required', 'this endpoint speaks WebSocket only');
    }
    const offered = (req.headers.get('sec-websocket-protocol') ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const protocol: WireProtocol = PROVIDER_PATHS[url.pathname] ?? 'native';
    const queryToken = url.searchParams.get('token');
    const headers: Record<string, string> = {};
    let nativeAuth: MediaSocketData['nativeAuth'] = null;
    let jambonzOutRate = 8000;
    if (protocol === 'jambonz') {
      if (!offered.includes(JAMBONZ_SUBPROTOCOL)) {
        return refuse(
          401,
          'bad_subprotocol',
          `Jambonz streams must offer the ${JAMBONZ_SUBPROTOCOL} subprotocol`,
        );
      }
      headers['Sec-WebSocket-Protocol'] = JAMBONZ_SUBPROTOCOL;
      const rate = Number(url.searchParams.get('rate') ?? 8000);
      if (rate === 16000) jambonzOutRate = rate;
    } else if (protocol === 'native') {
      nativeAuth = this.authenticateNative(offered, queryToken);
      if (!nativeAuth) {
        return refuse(
          401,
          'unauthorized',
          'offer the API key as subprotocol sipai.key.<key> (or the key alone), or pass ?token=',
        );
      }
      const selected = selectNativeSubprotocol(offered);
      if (selected === undefined) {
        return refuse(400, 'bad_subprotocol', `offer the ${NATIVE_SUBPROTOCOL} subprotocol next to the key`);
      }
      if (selected) headers['Sec-WebSocket-Protocol'] = selected;
    }
    const address = clientAddress(req, server.requestIP(req)?.address) ?? UNKNOWN_ADDRESS;
    const pendingHere = this.pendingByAddress.get(address) ?? 0;
    if (pendingHere >= this.maxPendingPerAddress) {
      mediaMetrics[protocol].refusedPending++;
      this.opts.log.warn(
        { protocol, address, pending: pendingHere },
        'media socket refused: too many pending',
      );
      return refuse(
        429,
        'too_many_pending',
        'too many sockets from this address have not started a call yet; retry shortly',
        { 'Retry-After': String(Math.max(1, Math.ceil(this.startTimeoutMs / 1000))) },
      );
    }
    const data: MediaSocketData = {
      protocol,
      codec: createCodec(protocol, { outSampleRate: jambonzOutRate }),
      transport: null,
      session: null,
      nativeAuth,
      pendingAddress: address,
      rate: new MessageRateLimiter({ ...this.messageRate, initialBurst: PRE_START_BURST }),
      rateClosed: false,
      queryToken,
      jambonzOutRate,
      openedAt: Date.now(),
      starting: false,
      early: [],
      valid: 0,
      garbage: 0,
    };
    this.pendingByAddress.set(address, pendingHere + 1);
    if (server.upgrade(req, { data, headers })) return undefined;
    this.releasePending(data);
    return refuse(400, 'upgrade_failed', 'WebSocket upgrade failed');
  }

  /** The socket sent its `start`, or closed: it no longer counts against its address. */
  private releasePending(d: MediaSocketData): void {
    const address = d.pendingAddress;
    if (address === null) return;
    d.pendingAddress = null;
    const left = (this.pendingByAddress.get(address) ?? 1) - 1;
    if (left > 0) this.pendingByAddress.set(address, left);
    else this.pendingByAddress.delete(address);
  }

  /** Sockets from `address` that have not sent `start` yet (for tests and diagnostics). */
  pendingFrom(address: string): number {
    return this.pendingByAddress.get(address) ?? 0;
  }

  /** A message over the socket's rate: dropped unread, and a persistent flood is closed. */
  private onRateExceeded(ws: MediaSocket, verdict: 'drop' | 'close'): void {
    const d = ws.data;
    const metrics = mediaMetrics[d.protocol];
    metrics.droppedRateLimited++;
    if (verdict === 'close' && !d.rateClosed) {
      d.rateClosed = true;
      metrics.closedRateLimited++;
      this.opts.log.warn(
        { protocol: d.protocol, callId: d.session?.callId, perSec: this.messageRate.perSec },
        'closing socket over its message rate',
      );
      this.pending.delete(ws);
      d.transport?.close(CloseCode.policy, 'message rate exceeded');
    }
  }

  private authenticateNative(offered: string[], token: string | null): MediaSocketData['nativeAuth'] {
    const key = this.opts.realtimeApiKey;
    if (key) {
      // `sipai.key.<key>`, or the key itself (`wscat -s <key>`); every offer is compared in full.
      let matched = false;
      for (const p of offered) {
        const prefixed =
          p.startsWith(NATIVE_KEY_SUBPROTOCOL_PREFIX) &&
          safeEqualStrings(p.slice(NATIVE_KEY_SUBPROTOCOL_PREFIX.length), key);
        const raw = safeEqualStrings(p, key);
        matched = matched || prefixed || raw;
      }
      if (matched) return { byKey: true };
    }
    if (token) {
      const result = verifyToken(this.opts.tokenSecrets, token, { kind: 'realtime' });
      if (result.ok) return { byKey: false, claims: result.claims };
    }
    return null;
  }

  private onMessage(ws: MediaSocket, message: string | Buffer): void {
    const d = ws.data;
    const metrics = mediaMetrics[d.protocol];
    const frame = d.codec.parse(message);
    if (frame === null) {
      metrics.droppedUnparsed++;
      d.garbage++;
      if (d.garbage > GARBAGE_LIMIT && d.garbage > d.valid) {
        this.opts.log.warn({ protocol: d.protocol, garbage: d.garbage }, 'closing socket sending garbage');
        d.transport?.close(CloseCode.policy, 'too many invalid messages');
      }
      return;
    }
    d.valid++;
    metrics.framesIn++;
    if (d.session) {
      d.session.handle(frame);
    } else if (d.starting) {
      if (d.early.length < MAX_EARLY_FRAMES) d.early.push(frame);
      else metrics.droppedBeforeStart++;
    } else if (frame.kind === 'start') {
      d.starting = true;
      // From here the start deadline bounds it; the address may open its next socket, and the
      // socket gets its whole burst (a client may send the audio it buffered while connecting).
      this.releasePending(d);
      d.rate.fill();
      this.startSession(ws, frame).catch((err: unknown) => {
        this.opts.log.error({ err: (err as Error).message, protocol: d.protocol }, 'session start failed');
        d.transport?.close(CloseCode.internal, 'session start failed');
      });
    } else if (frame.kind !== 'event') {
      metrics.droppedBeforeStart++;
    }
  }

  /** Authorises the stream, loads the agent, and wires a CallSession to the socket. */
  private async startSession(ws: MediaSocket, start: StartFrame): Promise<void> {
    const d = ws.data;
    const deny = (message: string) => {
      this.pending.delete(ws);
      d.transport?.send({ kind: 'error', code: 'forbidden', message });
      d.transport?.close(CloseCode.policy, message);
    };
    const auth = this.authorizeStart(d, start);
    if ('error' in auth) return deny(auth.error);
    const { callId } = auth;
    if (this.draining) return deny('node is draining');
    if (this.sessions.has(callId) || this.startingIds.has(callId)) {
      return deny('this call already has a live stream');
    }
    // Two starts of one call racing on this node: the second sees the first from here on.
    this.startingIds.add(callId);
    try {
      await this.setUp(ws, start, auth, deny);
    } finally {
      this.startingIds.delete(callId);
    }
  }

  private async setUp(
    ws: MediaSocket,
    start: StartFrame,
    grant: StartGrant,
    deny: (message: string) => void,
  ): Promise<void> {
    const d = ws.data;
    const { agentId, callId, accountId } = grant;
    if (d.protocol !== 'native' && this.opts.isAdmitted && !(await this.opts.isAdmitted(callId))) {
      return deny('call was never admitted, or has already ended');
    }

    const config = await loadAgentConfig(this.opts.store, agentId, this.opts.log);
    if (!config) return deny(`unknown agent ${agentId}`);
    let leased = false;
    if (d.protocol === 'native') {
      // Same answer for an agent of another account as for none: no probing across tenants.
      if (accountId !== undefined && (config.accountId ?? null) !== accountId) {
        return deny(`unknown agent ${agentId}`);
      }
      const admitted = await this.admitNative(callId, agentId, config);
      if (admitted !== 'ok') {
        if (admitted === 'live') return deny('this call already has a live stream');
        this.pending.delete(ws);
        d.transport?.send({ kind: 'error', code: 'at_capacity', message: admitted.message });
        d.transport?.close(CloseCode.tryAgainLater, 'at capacity');
        return;
      }
      leased = this.opts.capacity !== undefined;
    }
    const [build, context] = await Promise.all([
      this.buildAgent(config, start.sampleRate),
      this.callContext(callId),
    ]);
    if (ws.readyState !== 1) {
      build.vad.close?.();
      if (leased) await this.releaseNative(callId);
      return;
    }
    await this.attach(ws, { ...start, callId }, agentId, config, build, start.callId, context);
  }

  /**
   * A native call's leases, the way a provider call takes them at its webhook: a global slot
   * and one of its agent's (`maxConcurrentCalls`). A call id that already holds leases is live
   * (here or on another node): re-admitting it would only renew them, so it is refused.
   */
  private async admitNative(
    callId: string,
    agentId: string,
    config: AgentRecord,
  ): Promise<'ok' | 'live' | { message: string }> {
    const capacity = this.opts.capacity;
    if (!capacity) return 'ok';
    if ((await this.opts.store.get(leaseRecordKey(callId))) !== null) return 'live';
    const result = await capacity.admit(callId, { agentId, agentMax: config.maxConcurrentCalls });
    if (result.ok) return 'ok';
    this.opts.log.warn(
      { callId, agentId, scope: result.scope, count: result.count, limit: result.limit },
      'native call refused at capacity',
    );
    return { message: `at capacity (${result.scope}: ${result.count}/${result.limit}); retry later` };
  }

  private async releaseNative(callId: string): Promise<void> {
    const keeper = this.keepers.get(callId);
    this.keepers.delete(callId);
    try {
      await keeper?.stop();
      await this.opts.capacity?.release(callId);
    } catch (err) {
      this.opts.log.error({ callId, err: (err as Error).message }, 'lease release failed');
    }
  }

  /** What control left for a call it placed (a campaign contact's variables), if anything. */
  private async callContext(callId: string): Promise<Partial<CallInfo>> {
    try {
      const raw = await this.opts.store.get(keys.callContext(callId));
      if (!raw) return {};
      const value = JSON.parse(raw) as { variables?: unknown };
      const variables: Record<string, string> = {};
      if (value.variables && typeof value.variables === 'object') {
        for (const [k, v] of Object.entries(value.variables)) if (typeof v === 'string') variables[k] = v;
      }
      return { variables, direction: 'outbound' };
    } catch (err) {
      this.opts.log.warn({ callId, err: (err as Error).message }, 'call context unreadable');
      return {};
    }
  }

  /**
   * The brain and providers of one call. An agent this node cannot run (a missing package, key
   * or adapter) still gets its call: an apology, the reason on the timeline, a clean end.
   */
  private async buildAgent(config: AgentRecord, wireRate: number): Promise<AgentBuild> {
    const env = this.opts.providerEnv ?? process.env;
    const registry = this.opts.registry ?? sharedRegistry();
    try {
      return await registry.build(config, wireRate, env);
    } catch (err) {
      const reason =
        err instanceof UnavailableError ? err.message : `agent failed to start: ${(err as Error).message}`;
      this.opts.log.warn({ agentId: config.id, reason }, 'agent unavailable on this node');
      const tts = registry.fallbackVoice(env);
      const pipelineRate = tts?.sampleRate ?? wireRate;
      return {
        agent: new UnavailableAgent([reason], tts !== null),
        tts,
        vad: registry.createVad(pipelineRate, 500, env, { model: false }),
        pipelineRate,
      };
    }
  }

  /**
   * Which call this start is and which agent it may run, or why it may not start at all.
   * A stream token is bound to the call we admitted; Telnyx names the stream by its
   * call_control_id rather than the TeXML CallSid we admitted, so there the token's call wins.
   */
  private authorizeStart(d: MediaSocketData, start: StartFrame): StartGrant | { error: string } {
    if (d.protocol === 'native') {
      const auth = d.nativeAuth;
      const requested = start.params.agentId;
      if (!auth) return { error: 'not authenticated' };
      // The client names its call; the id it gets lives in its own namespace (native-call-id.ts).
      if (auth.byKey) {
        const namespace = callNamespace({ apiKey: this.opts.realtimeApiKey! });
        return {
          agentId: requested ?? this.defaultAgentId ?? 'echo',
          callId: nativeCallId(namespace, start.callId),
        };
      }
      if (auth.claims.sub && auth.claims.sub !== start.callId)
        return { error: 'token is bound to another call' };
      if (requested && requested !== auth.claims.agentId) return { error: 'token is for another agent' };
      // A token opens agents of the account it was minted for; one minted without an account
      // (only the secret's holder can) opens agents of no account, i.e. the built-in ones.
      const accountId = typeof auth.claims.accountId === 'string' ? auth.claims.accountId : null;
      return {
        agentId: auth.claims.agentId,
        callId: nativeCallId(callNamespace({ accountId }), start.callId),
        accountId,
      };
    }
    const token = start.params.token ?? d.queryToken;
    const bindToStart = d.protocol !== 'telnyx';
    const result = verifyToken(this.opts.tokenSecrets, token, { kind: 'stream' });
    if (!result.ok) return { error: `stream token rejected: ${result.reason}` };
    const { sub, providerCallId } = result.claims;
    // A call we placed is admitted under our id; the provider names its stream by its own id,
    // which the token carries as `providerCallId`. Either way the stream must be this call's.
    if (bindToStart && sub !== start.callId && providerCallId !== start.callId)
      return { error: 'stream token rejected: wrong_call' };
    return { agentId: result.claims.agentId, callId: sub! };
  }

  private async attach(
    ws: MediaSocket,
    start: StartFrame,
    agentId: string,
    config: AgentRecord,
    build: AgentBuild,
    providerCallId: string,
    call: Partial<CallInfo>,
  ): Promise<void> {
    const d = ws.data;
    const metrics = mediaMetrics[d.protocol];
    const wireOut =
      d.protocol === 'twilio' || d.protocol === 'telnyx'
        ? { encoding: start.encoding, sampleRate: start.sampleRate }
        : d.protocol === 'jambonz'
          ? { encoding: 'pcm16' as const, sampleRate: d.jambonzOutRate }
          : { encoding: start.encoding, sampleRate: start.sampleRate };
    const session = new CallSession({
      callId: start.callId,
      providerCallId,
      agentId,
      protocol: d.protocol,
      start,
      call,
      wireOut,
      agent: build.agent,
      agentConfig: config,
      vad: build.vad,
      tts: build.tts,
      pipelineRate: build.pipelineRate,
      transfer: this.opts.transfer ? (to) => this.opts.transfer!(session, to) : undefined,
      transport: d.transport!,
      store: this.opts.store,
      log: this.opts.log,
      clock: this.clock,
      idleTimeoutMs: this.opts.idleTimeoutMs,
      maxDurationMs: this.opts.maxDurationMs,
      onEnded: (s, reason) => {
        if (this.sessions.get(s.callId) === s) this.sessions.delete(s.callId);
        metrics.sessions--;
        this.opts.log.info({ callId: s.callId, protocol: s.protocol, reason }, 'call ended');
        if (s.protocol === 'native' && this.opts.capacity) void this.releaseNative(s.callId);
        this.opts.onSessionEnded?.(s, reason);
      },
    });
    this.pending.delete(ws);
    this.releasePending(d);
    metrics.sessions++;
    if (d.protocol === 'native' && this.opts.capacity) {
      this.keepers.set(
        session.callId,
        keepLeasesAlive(this.opts.capacity, session.callId, {
          onLost: () => session.close('error', { detail: 'call leases lost' }),
          onError: (err) =>
            this.opts.log.warn(
              { callId: session.callId, err: (err as Error).message },
              'lease renewal failed',
            ),
        }),
      );
    }
    // Frames keep queueing in `early` while the hook runs; the session is listed and announced
    // only once it resolves. Closing the session runs onEnded, which undoes what the hook set up.
    try {
      await this.opts.onSessionStarted?.(session);
    } catch (err) {
      this.opts.log.error({ callId: start.callId, err: (err as Error).message }, 'session setup failed');
      session.close('error', { detail: 'session setup failed' });
      return;
    }
    if (ws.readyState !== 1) {
      session.close('socket_closed', { socketClosed: true });
      return;
    }
    this.sessions.set(start.callId, session);
    d.session = session;
    d.starting = false;
    // The client learns the id its call is known by (timeline, `GET /v1/calls/{id}`, commands).
    if (d.protocol === 'native') {
      d.transport?.send({
        kind: 'event',
        name: 'call.started',
        data: { callId: session.callId, clientCallId: providerCallId },
      });
    }
    this.opts.log.info({ callId: start.callId, protocol: d.protocol, agentId }, 'call started');
    void session.begin();
    for (const frame of d.early.splice(0)) session.handle(frame);
  }

  private sweep(): void {
    const now = Date.now();
    for (const session of this.sessions.values()) session.checkTimers(now);
    // Whatever a socket sends, it gets one start deadline: garbage, valid non-start messages and
    // a start that never finishes setting up all end here.
    for (const ws of this.pending) {
      if (now - ws.data.openedAt <= this.startTimeoutMs) continue;
      this.pending.delete(ws);
      mediaMetrics[ws.data.protocol].closedStartTimeout++;
      if (ws.data.starting) ws.data.transport?.close(CloseCode.tryAgainLater, 'session start timed out');
      else ws.data.transport?.close(CloseCode.policy, 'no start message');
    }
  }

  /** Whether this node stopped admitting streams (shutting down). */
  get isDraining(): boolean {
    return this.draining;
  }

  /** Live sessions now. */
  get activeSessions(): number {
    return this.sessions.size;
  }

  /**
   * Stops admitting streams and waits for live calls to end on their own, up to `graceMs`;
   * then ends the rest (reason server_shutdown) and stops the timers.
   */
  async drain(graceMs: number): Promise<void> {
    this.draining = true;
    const deadline = Date.now() + graceMs;
    while (this.sessions.size > 0 && Date.now() < deadline) await Bun.sleep(50);
    for (const session of [...this.sessions.values()]) session.close('server_shutdown');
    for (const ws of this.pending) ws.data.transport?.close(CloseCode.goingAway, 'server shutting down');
    this.pending.clear();
    clearInterval(this.sweeper);
  }
}
