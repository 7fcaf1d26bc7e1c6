import { loadAgentConfig } from '../../agent/resolve.ts';
import { mintToken } from '../../auth/tokens.ts';
import type { CallCapacity, CapacityScope } from '../../capacity/index.ts';
import type { Logger } from '../../observability/log.ts';
import { keys } from '../../store/keys.ts';
import type { Store } from '../../store/store.ts';

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
  | { ok: false; reason: 'at_capacity'; scope: CapacityScope; count: number; limit: number };

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
}

/** Call states, in any provider's words, after which the call is over. */
const FINAL_STATUSES = new Set(['completed', 'busy', 'failed', 'no-answer', 'canceled']);

/**
 * The one admission path every provider's call webhook takes: pick the agent (explicit id,
 * then the number's route, then the default), take the call's leases all-or-nothing, record
 * the call, and mint the token that binds the media stream to it. A refusal takes nothing.
 */
export class CallAdmission {
  constructor(private readonly opts: AdmissionOptions) {}

  async admit(call: OfferedCall): Promise<Admission> {
    const agentId = call.agentId ?? (await this.routedAgent(call.to)) ?? this.opts.defaultAgentId;
    if (!agentId) return { ok: false, reason: 'no_route' };
    const config = await loadAgentConfig(this.opts.store, agentId);
    if (!config) return { ok: false, reason: 'unknown_agent' };
    const maxConcurrent = (config as { maxConcurrentCalls?: number }).maxConcurrentCalls;
    const leased = await this.opts.capacity.admit(call.callId, {
      agentId,
      agentMax: maxConcurrent,
      campaignId: call.campaignId,
    });
    if (!leased.ok)
      return {
        ok: false,
        reason: 'at_capacity',
        scope: leased.scope,
        count: leased.count,
        limit: leased.limit,
      };
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
    const token = mintToken(
      this.opts.tokenSecret,
      // The provider names the stream by its own call id: the token says which one it may be.
      { kind: 'stream', sub: call.callId, agentId, ...(providerCallId ? { providerCallId } : {}) },
      STREAM_TOKEN_TTL_SEC,
    );
    return { ok: true, agentId, token, sampleRate: config.sampleRate === 16000 ? 16000 : 8000 };
  }

  private async routedAgent(to: string): Promise<string | undefined> {
    if (!to) return undefined;
    const raw = await this.opts.store.get(keys.numberRoute(to));
    if (!raw) return undefined;
    try {
      return (JSON.parse(raw) as { agentId?: string }).agentId;
    } catch {
      this.opts.log.warn({ to }, 'unreadable number route');
      return undefined;
    }
  }

  /**
   * The provider says the call is over: free its leases (exactly once, whichever end path
   * gets there first) and forget it. Returns whether this call released anything.
   */
  async end(callId: string): Promise<boolean> {
    const released = await this.opts.capacity.release(callId);
    await this.opts.store.del(keys.call(callId));
    return released;
  }

  /**
   * A provider status callback, as a `call.status` event on the global stream: the only news
   * control gets of a call that never reached a session (busy, no-answer, failed).
   */
  /**
   * A provider's status callback, whichever provider: a final state frees the call's leases
   * and ends its session here; every state goes to the event stream for control.
   */
  async statusChanged(update: StatusUpdate): Promise<void> {
    if (FINAL_STATUSES.has(update.status)) {
      await this.end(update.callId);
      this.opts.endSession?.(update.callId);
    }
    if (update.status) await this.reportStatus(update);
  }

  private async reportStatus(update: StatusUpdate): Promise<void> {
    await this.opts.store.append(
      keys.events,
      {
        type: 'call.status',
        callId: update.callId,
        agentId: update.agentId ?? '',
        protocol: update.provider,
        at: new Date().toISOString(),
        data: JSON.stringify({ status: update.status, providerCallId: update.providerCallId }),
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
}

/** As the session timeline trims the global stream (core/session/timeline.ts). */
const STATUS_STREAM_MAX_LEN = 100_000;
