import { loadAgentConfig } from '../../agent/resolve.ts';
import { mintToken } from '../../auth/tokens.ts';
import type { CallCapacity, CapacityScope } from '../../capacity/index.ts';
import type { Logger } from '../../observability/log.ts';
import { serializeEventData } from '../../session/timeline.ts';
import { keys } from '../../store/keys.ts';
import { StoreUnavailableError } from '../../store/redis-store.ts';
import type { Store } from '../../store/store.ts';
import { DEFAULT_ENDED_CALL_TTL_MS, ReplayGuard } from './replay-guard.ts';
import { StatusOutbox } from './status-outbox.ts';

export type Provider = 'twilio' | 'jambonz' | 'telnyx';

/** A call a provider is offering us, as its webhook describes it. */
export interface OfferedCall {
  provider: Provider;
  /** Our id of the call: the id we placed it under (outbound), or the provider's (inbound). */
  callId: string;
  /** The provider's id of the call, when it differs from `callId` (calls we placed). */
  providerCallId?: string;
  /** Called number (E.164 where the provider gives one). */
  to: string;
  from: string;
  /** An agent named by the call itself (our outbound calls tag it; customer data). */
  agentId?: string;
  campaignId?: string;
}

/** What core knows about an admitted call, kept in the Store while it lives. */
export interface CallRecord {
  provider: Provider;
  providerCallId?: string;
  agentId: string;
  campaignId?: string;
  from: string;
  to: string;
  admittedAt: string;
  /** Node running its media session, once the stream is up. */
  node?: string;
}

export type Admission =
  | { ok: true; agentId: string; token: string; sampleRate: number }
  | { ok: false; reason: 'no_route' | 'unknown_agent' }
  /** The call already ended (a replayed or late call webhook): refused, nothing taken. */
  | { ok: false; reason: 'ended' }
  /** The Store is down: nothing could be checked or taken, the provider should fail over. */
  | { ok: false; reason: 'store_unavailable' }
  | { ok: false; reason: 'at_capacity'; scope: CapacityScope; count: number; limit: number };

/** Why a call was refused, as `admit` answers it. */
export type Refusal = Extract<Admission, { ok: false }>;

/** Who a call belongs to, as far as admission could tell. */
interface Owner {
  agentId?: string;
  accountId?: string;
}

/** Stream tokens are short-lived: the provider opens the socket right after our answer. */
const STREAM_TOKEN_TTL_SEC = 300;

export interface AdmissionOptions {
  store: Store;
  capacity: CallCapacity;
  log: Logger;
  tokenSecret: string;
  defaultAgentId?: string;
  /** How long a call record lives without the call ending (the lease TTL). */
  recordTtlMs: number;
  /** Ends a live session of the call on this node, if there is one. */
  endSession?: (callId: string) => void;
  /**
   * How long ended calls and handled deliveries are remembered (TELEPHONY_ENDED_CALL_TTL_SEC ×
   * 1000): replays within it are refused. Default: a day.
   */
  endedCallTtlMs?: number;
  /** Whether the Store answered its last health probe; when not, calls are refused at once. */
  storeUp?: () => boolean;
}

/** Call states, in any provider's words, after which the call is over. */
const FINAL_STATUSES = new Set(['completed', 'busy', 'failed', 'no-answer', 'canceled']);

/**
 * The one admission path every provider's call webhook takes: pick the agent (explicit id,
 * then the number's route, then the default), take the call's leases all-or-nothing, record
 * the call, and mint the token that binds the media stream to it. A refusal takes nothing.
 */
export class CallAdmission {
  /** The agent of calls no number routes and no request names (`DEFAULT_AGENT_ID`, or set at boot). */
  defaultAgentId: string | undefined;

  constructor(private readonly opts: AdmissionOptions) {
    this.defaultAgentId = opts.defaultAgentId;
  }

  /** Whether the Store answered its last health probe (always, without a probe). */
  get storeUp(): boolean {
    return this.opts.storeUp?.() ?? true;
  }

  /**
   * Admits the call, or refuses it. While the Store is down every call is refused at once
   * (`store_unavailable`), never left waiting: the provider's fast polite answer lets it fail over.
   */
  async admit(call: OfferedCall): Promise<Admission> {
    if (!this.storeUp) return { ok: false, reason: 'store_unavailable' };
    try {
      return await this.admitNow(call);
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err;
      this.opts.log.warn(
        { callId: call.callId, err: err.message },
        'call admission failed: store unavailable',
      );
      // Whatever was leased before the Store went away would otherwise wait for its TTL.
      void this.opts.capacity.release(call.callId).catch(() => {});
      return { ok: false, reason: 'store_unavailable' };
    }
  }

  private async admitNow(call: OfferedCall): Promise<Admission> {
    const route = call.agentId ? undefined : await this.route(call.to);
    const agentId = call.agentId ?? route?.agentId ?? this.defaultAgentId;
    const owner: Owner = { agentId, accountId: route?.accountId };
    if (!agentId) return this.refuse(call, owner, { ok: false, reason: 'no_route' });
    const config = await loadAgentConfig(this.opts.store, agentId);
    if (!config) return this.refuse(call, owner, { ok: false, reason: 'unknown_agent' });
    owner.accountId ??= config.accountId;
    // A replay of the webhook of a call that ended must not take its slots again.
    const ids = { callId: call.callId, provider: call.provider, providerCallId: call.providerCallId };
    if (await this.replays.hasEnded(ids)) return this.refuse(call, owner, { ok: false, reason: 'ended' });
    const maxConcurrent = (config as { maxConcurrentCalls?: number }).maxConcurrentCalls;
    const leased = await this.opts.capacity.admit(call.callId, {
      agentId,
      agentMax: maxConcurrent,
      campaignId: call.campaignId,
    });
    if (!leased.ok)
      return this.refuse(call, owner, {
        ok: false,
        reason: 'at_capacity',
        scope: leased.scope,
        count: leased.count,
        limit: leased.limit,
      });
    const providerCallId =
      call.providerCallId && call.providerCallId !== call.callId ? call.providerCallId : undefined;
    const record: CallRecord = {
      provider: call.provider,
      providerCallId,
      agentId,
      campaignId: call.campaignId,
      from: call.from,
      to: call.to,
      admittedAt: new Date().toISOString(),
    };
    await this.opts.store.set(keys.call(call.callId), JSON.stringify(record), this.opts.recordTtlMs);
    // The call may have ended while we leased (end marks first, then releases): give it all back.
    if (await this.replays.hasEnded(ids)) {
      await this.end(call.callId);
      return this.refuse(call, owner, { ok: false, reason: 'ended' });
    }
    try {
      await this.report('call.admitted', call, owner, {});
    } catch (err) {
      // The call goes ahead; it is recorded from its session's events instead.
      this.opts.log.warn({ callId: call.callId, err: (err as Error).message }, 'call admission not reported');
    }
    const token = mintToken(
      this.opts.tokenSecret,
      // The provider names the stream by its own call id: the token says which one it may be.
      { kind: 'stream', sub: call.callId, agentId, ...(providerCallId ? { providerCallId } : {}) },
      STREAM_TOKEN_TTL_SEC,
    );
    return { ok: true, agentId, token, sampleRate: config.sampleRate === 16000 ? 16000 : 8000 };
  }

  private async route(to: string): Promise<Owner | undefined> {
    if (!to) return undefined;
    const raw = await this.opts.store.get(keys.numberRoute(to));
    if (!raw) return undefined;
    try {
      const route = JSON.parse(raw) as { agentId?: unknown; accountId?: unknown };
      return {
        agentId: typeof route.agentId === 'string' ? route.agentId : undefined,
        accountId: typeof route.accountId === 'string' ? route.accountId : undefined,
      };
    } catch {
      this.opts.log.warn({ to }, 'unreadable number route');
      return undefined;
    }
  }

  /**
   * Puts a refusal on the event stream (`call.refused`), so control records the attempt and
   * why: without it a refused caller heard silence and nobody could see it. The answer goes
   * out even when the Store cannot take the event (the provider webhook logs the refusal).
   */
  private async refuse<R extends Refusal>(call: OfferedCall, owner: Owner, refusal: R): Promise<R> {
    const { ok: _ok, ...why } = refusal;
    try {
      await this.report('call.refused', call, owner, why);
    } catch (err) {
      this.opts.log.warn(
        { callId: call.callId, reason: refusal.reason, err: (err as Error).message },
        'call refusal not reported',
      );
    }
    return refusal;
  }

  /** One admission event (`call.admitted`, `call.refused`) on the global event stream. */
  private async report(
    type: 'call.admitted' | 'call.refused',
    call: OfferedCall,
    owner: Owner,
    extra: Record<string, unknown>,
  ): Promise<void> {
    const providerCallId =
      call.providerCallId && call.providerCallId !== call.callId ? call.providerCallId : undefined;
    await this.opts.store.append(
      keys.events,
      {
        type,
        callId: call.callId,
        agentId: owner.agentId ?? '',
        protocol: call.provider,
        at: new Date().toISOString(),
        data: serializeEventData({
          ...extra,
          // Calls we placed are offered under our id, not the provider's.
          direction: providerCallId ? 'outbound' : 'inbound',
          from: call.from,
          to: call.to,
          ...(providerCallId ? { providerCallId } : {}),
          ...(call.campaignId ? { campaignId: call.campaignId } : {}),
          ...(owner.accountId ? { accountId: owner.accountId } : {}),
        }),
      },
      STATUS_STREAM_MAX_LEN,
    );
  }

  /**
   * Status updates on their way to the event stream: reported at once, or kept in memory while
   * the Store is down and reported when it is back (a final status ends the session here at once).
   */
  get statuses(): StatusOutbox {
    this.outbox ??= new StatusOutbox({
      deliver: (update) => this.statusChanged(update),
      onBuffered: (update) => {
        if (FINAL_STATUSES.has(update.status)) this.opts.endSession?.(update.callId);
      },
      log: this.opts.log,
      storeUp: () => this.storeUp,
    });
    return this.outbox;
  }

  private outbox: StatusOutbox | undefined;

  /** Ended calls and handled deliveries, remembered so a replayed webhook has no effect. */
  get replays(): ReplayGuard {
    this.guard ??= new ReplayGuard(this.opts.store, this.opts.endedCallTtlMs ?? DEFAULT_ENDED_CALL_TTL_MS);
    return this.guard;
  }

  private guard: ReplayGuard | undefined;

  /**
   * The call is over (the provider says so, or its stream ended): remember it as ended, so a
   * replayed call webhook cannot admit it again, then free its leases (exactly once, whichever
   * end path gets there first) and forget it. Returns whether this call released anything.
   */
  async end(callId: string, ids?: { provider: Provider; providerCallId: string }): Promise<boolean> {
    const record = await this.readRecord(callId);
    const provider = record?.provider ?? ids?.provider;
    const providerCallId = record?.providerCallId ?? ids?.providerCallId;
    await this.replays.markEnded({ callId, provider, providerCallId });
    const released = await this.opts.capacity.release(callId);
    await this.opts.store.del(keys.call(callId));
    return released;
  }

  /**
   * A provider's status callback, whichever provider: a final state frees the call's leases
   * and ends its session here; each state of a call goes once to the event stream, the only
   * news control gets of a call that never reached a session (busy, no-answer, failed). A
   * retried or replayed callback changes nothing and reports nothing.
   */
  async statusChanged(update: StatusUpdate): Promise<void> {
    // Read before `end` forgets it: a final status of a call still on record was admitted.
    let admitted: CallRecord | null = null;
    if (FINAL_STATUSES.has(update.status)) {
      admitted = await this.readRecord(update.callId);
      await this.end(update.callId, { provider: update.provider, providerCallId: update.providerCallId });
      this.opts.endSession?.(update.callId);
    }
    if (!update.status) return;
    const claim = await this.replays.claim(
      `status:${update.provider}:${update.providerCallId || update.callId}:${update.status}`,
      update.deliveryId,
    );
    if (!claim) return;
    try {
      await this.reportStatus(update, admitted);
    } catch (err) {
      // Let the provider's retry report it.
      await claim.undo().catch(() => {});
      throw err;
    }
  }

  private async readRecord(callId: string): Promise<CallRecord | null> {
    const raw = await this.opts.store.get(keys.call(callId));
    if (!raw) return null;
    try {
      return JSON.parse(raw) as CallRecord;
    } catch {
      return null;
    }
  }

  /**
   * `admitted`: the call's record when a final status found it still on record. The recorder
   * closes such a call as `never_streamed` if no session ever started for it.
   */
  private async reportStatus(update: StatusUpdate, admitted: CallRecord | null): Promise<void> {
    await this.opts.store.append(
      keys.events,
      {
        type: 'call.status',
        callId: update.callId,
        agentId: update.agentId ?? admitted?.agentId ?? '',
        protocol: update.provider,
        at: update.at ?? new Date().toISOString(),
        data: serializeEventData({
          status: update.status,
          providerCallId: update.providerCallId,
          ...(admitted ? { admitted: true, from: admitted.from, to: admitted.to } : {}),
        }),
      },
      STATUS_STREAM_MAX_LEN,
    );
  }
}

/** A provider's report of a call's state (`call_status`, `CallStatus`). */
export interface StatusUpdate {
  provider: Provider;
  callId: string;
  providerCallId: string;
  /** The provider's word for it: ringing, in-progress, completed, busy, no-answer, failed, … */
  status: string;
  agentId?: string;
  /** When the provider told us (ISO 8601); default: when it is reported. */
  at?: string;
  /** One id for every attempt to report this update: a retry re-takes its own replay claim. */
  deliveryId?: string;
}

/** As the session timeline trims the global stream (core/session/timeline.ts). */
const STATUS_STREAM_MAX_LEN = 100_000;
