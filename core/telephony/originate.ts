import type { CallCapacity, CapacityScope } from '../capacity/index.ts';
import { ProviderError, type ProviderName } from './provider-error.ts';

/** One outbound call as the platform sees it, before any provider is involved. */
export interface OutboundCall {
  /** Our call id: the lease holder, and what the provider's webhooks must carry back. */
  callId: string;
  agentId: string;
  campaignId?: string;
  to: string;
  from: string;
  timeoutSec?: number;
  /** Extra string fields the dialer may pass to the provider (e.g. Jambonz `tag`). */
  metadata?: Record<string, string>;
}

/** A provider's "place this call" (see `jambonzDialer`, `twilioDialer`). */
export interface OutboundDialer {
  readonly provider: ProviderName;
  /** Resolves to the provider's call id; rejects with a ProviderError. */
  dial(call: OutboundCall): Promise<string>;
}

export interface OriginateRequest extends OutboundCall {
  capacity: CallCapacity;
  dialer: OutboundDialer;
  /** The agent's own concurrency limit, if it has one. */
  agentMax?: number;
  /** Overrides the default per-campaign limit for this campaign. */
  campaignMax?: number;
  /** The cap on API-originated calls across the deployment, when there is one. */
  originatedMax?: number;
}

export type OriginateResult =
  | { ok: true; provider: ProviderName; providerCallId: string }
  | {
      ok: false;
      code: 'at_capacity';
      scope: CapacityScope;
      count: number;
      limit: number;
      /** Capacity frees up as calls end. */
      retryable: true;
    }
  | { ok: false; code: 'provider_error'; error: ProviderError; retryable: boolean };

/**
 * Places an outbound call without ever exceeding capacity: the leases come first, then the
 * provider is asked; if the provider refuses or does not answer in time, the leases are given
 * back before returning. A timeout is ambiguous (the provider may have placed the call anyway);
 * a call that does go through then arrives at the call webhook, which admits it again.
 */
export async function originateCall(req: OriginateRequest): Promise<OriginateResult> {
  const admitted = await req.capacity.admit(req.callId, {
    agentId: req.agentId,
    ...(req.agentMax === undefined ? {} : { agentMax: req.agentMax }),
    ...(req.campaignId === undefined ? {} : { campaignId: req.campaignId }),
    ...(req.campaignMax === undefined ? {} : { campaignMax: req.campaignMax }),
    ...(req.originatedMax === undefined ? {} : { originatedMax: req.originatedMax }),
  });
  if (!admitted.ok) {
    return {
      ok: false,
      code: 'at_capacity',
      scope: admitted.scope,
      count: admitted.count,
      limit: admitted.limit,
      retryable: true,
    };
  }

  const call: OutboundCall = {
    callId: req.callId,
    agentId: req.agentId,
    to: req.to,
    from: req.from,
    ...(req.campaignId === undefined ? {} : { campaignId: req.campaignId }),
    ...(req.timeoutSec === undefined ? {} : { timeoutSec: req.timeoutSec }),
    ...(req.metadata === undefined ? {} : { metadata: req.metadata }),
  };
  try {
    const providerCallId = await req.dialer.dial(call);
    return { ok: true, provider: req.dialer.provider, providerCallId };
  } catch (err) {
    // If the Store fails here too, the slots still lapse after one TTL: report the provider's error.
    await req.capacity.release(req.callId).catch(() => false);
    if (err instanceof ProviderError) {
      return { ok: false, code: 'provider_error', error: err, retryable: err.retryable };
    }
    throw err;
  }
}
