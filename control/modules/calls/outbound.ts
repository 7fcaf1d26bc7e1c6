import { CallCapacity } from '../../../core/capacity/index.ts';
import type { Config } from '../../../core/config/index.ts';
import type { Store } from '../../../core/store/index.ts';
import {
  hookAuthOf,
  JambonzRestClient,
  type JambonzSpeechDefaults,
  jambonzDialer,
  type OriginateResult,
  type OutboundCall,
  type OutboundDialer,
  originateCall,
  ProviderError,
  TwilioRestClient,
  twilioDialer,
  withUrlCredentials,
} from '../../../core/telephony/index.ts';
import { ApiError } from '../../errors.ts';

/** The providers control can place calls through. */
export type OutboundProvider = 'jambonz' | 'twilio';

/**
 * What Jambonz's REST API requires of a call placed without an application (api-server
 * `validateCreateCall`). Our `listen` verb streams the audio to core, whose agent does its own
 * speech, so Jambonz never uses these: they only make the request valid.
 */
const JAMBONZ_SPEECH_DEFAULTS: JambonzSpeechDefaults = {
  synthesizer: { vendor: 'google', language: 'en-US', voice: 'en-US-Standard-C' },
  recognizer: { vendor: 'google', language: 'en-US' },
};

/** How long a placed call may ring before the provider gives up (seconds). */
export const DEFAULT_RING_TIMEOUT_SEC = 45;

export interface PlaceCall {
  callId: string;
  provider: OutboundProvider;
  agentId: string;
  /** The agent's own concurrency limit, if it has one. */
  agentMax?: number;
  campaignId?: string;
  campaignMax?: number;
  from: string;
  to: string;
  timeoutSec?: number;
}

/**
 * Outbound calls from control: the provider REST clients built from settings, and core's
 * `originateCall` (leases first, provider second, leases back on refusal). The webhooks the
 * provider calls belong to core (`${PUBLIC_BASE_URL}/telephony/…`) and carry our call id, so
 * core admits the call under the leases taken here and releases them on the status callback:
 * Jambonz through the call's `tag` (echoed as `customerData`), Twilio in the signed URLs. With
 * TELEPHONY_SHARED_SECRET set, those webhooks carry it as Basic auth (core/telephony/hook-auth.ts).
 */
export class OutboundDialing {
  readonly capacity: CallCapacity;
  private readonly dialers = new Map<OutboundProvider, OutboundDialer>();

  constructor(
    private readonly config: Config,
    store: Store,
  ) {
    this.capacity = new CallCapacity(store, {
      globalMax: config.TELEPHONY_GLOBAL_MAX_CONCURRENCY,
      perCampaignMax: config.TELEPHONY_PER_CAMPAIGN_MAX_CONCURRENCY,
      ttlMs: config.TELEPHONY_SEMAPHORE_TTL_SEC * 1000,
    });
  }

  /** Null when the provider is configured; otherwise the settings it is missing. */
  missingSettings(provider: OutboundProvider): string[] | null {
    const c = this.config;
    const required =
      provider === 'jambonz'
        ? {
            JAMBONZ_API_BASE_URL: c.JAMBONZ_API_BASE_URL,
            JAMBONZ_ACCOUNT_SID: c.JAMBONZ_ACCOUNT_SID,
            JAMBONZ_API_KEY: c.JAMBONZ_API_KEY,
          }
        : { TWILIO_ACCOUNT_SID: c.TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN: c.TWILIO_AUTH_TOKEN };
    const missing = Object.entries(required)
      .filter(([, v]) => !v)
      .map(([k]) => k);
    return missing.length > 0 ? missing : null;
  }

  /** 503 `provider_not_configured` naming the missing settings, unless the provider is usable. */
  assertConfigured(provider: OutboundProvider): void {
    const missing = this.missingSettings(provider);
    if (missing) {
      throw new ApiError(
        503,
        'provider_not_configured',
        `outbound calls through ${provider} are not configured on this deployment: set ${missing.join(', ')}`,
        { provider, missing },
      );
    }
  }

  /**
   * Takes the leases and asks the provider; see core's `originateCall`. Every call placed here
   * is API-originated, so it also counts against TELEPHONY_OUTBOUND_MAX_CONCURRENCY when set.
   */
  place(call: PlaceCall): Promise<OriginateResult> {
    this.assertConfigured(call.provider);
    const originatedMax = this.config.TELEPHONY_OUTBOUND_MAX_CONCURRENCY;
    return originateCall({
      capacity: this.capacity,
      dialer: this.dialer(call.provider),
      callId: call.callId,
      agentId: call.agentId,
      to: call.to,
      from: call.from,
      timeoutSec: call.timeoutSec ?? DEFAULT_RING_TIMEOUT_SEC,
      ...(call.agentMax === undefined ? {} : { agentMax: call.agentMax }),
      ...(call.campaignId === undefined ? {} : { campaignId: call.campaignId }),
      ...(call.campaignMax === undefined ? {} : { campaignMax: call.campaignMax }),
      ...(originatedMax === undefined ? {} : { originatedMax }),
    });
  }

  private dialer(provider: OutboundProvider): OutboundDialer {
    let dialer = this.dialers.get(provider);
    if (!dialer) {
      dialer = hidingSecret(
        provider === 'jambonz' ? this.jambonz() : this.twilio(),
        this.config.TELEPHONY_SHARED_SECRET,
      );
      this.dialers.set(provider, dialer);
    }
    return dialer;
  }

  private jambonz(): OutboundDialer {
    const c = this.config;
    const hookAuth = hookAuthOf(c.TELEPHONY_SHARED_SECRET);
    const client = new JambonzRestClient({
      baseUrl: c.JAMBONZ_API_BASE_URL!,
      accountSid: c.JAMBONZ_ACCOUNT_SID!,
      apiKey: c.JAMBONZ_API_KEY!,
    });
    const base = c.PUBLIC_BASE_URL;
    return jambonzDialer(client, {
      callHookUrl: () => `${base}/telephony/jambonz/call`,
      statusHookUrl: () => `${base}/telephony/jambonz/status`,
      speech: JAMBONZ_SPEECH_DEFAULTS,
      ...(c.JAMBONZ_APPLICATION_SID ? { applicationSid: c.JAMBONZ_APPLICATION_SID } : {}),
      // Core requires it on every /telephony/* request: Jambonz sends it as Basic auth.
      ...(hookAuth ? { hookAuth } : {}),
    });
  }

  private twilio(): OutboundDialer {
    const c = this.config;
    const client = new TwilioRestClient({
      baseUrl: c.TWILIO_API_BASE_URL,
      accountSid: c.TWILIO_ACCOUNT_SID!,
      // While rotating, the setting lists several tokens: the first is the current one.
      authToken: c.TWILIO_AUTH_TOKEN!.split(',')[0]!.trim(),
    });
    // Core requires TELEPHONY_SHARED_SECRET on every /telephony/* request, and Twilio cannot add
    // a header: credentials in the URL make it answer core's 401 challenge with Basic auth.
    const base = withUrlCredentials(c.PUBLIC_BASE_URL, hookAuthOf(c.TELEPHONY_SHARED_SECRET));
    return twilioDialer(client, {
      instructions: (call) => ({ url: `${base}/telephony/twilio/voice?${callQuery(call)}` }),
      statusCallback: (call) => `${base}/telephony/twilio/status?${callQuery(call)}`,
      statusCallbackEvent: ['initiated', 'ringing', 'answered', 'completed'],
    });
  }
}

/** `callId`, `agentId` and `campaignId` for Twilio's webhook URLs (core reads them back). */
function callQuery(call: OutboundCall): string {
  const q = new URLSearchParams({ callId: call.callId, agentId: call.agentId });
  if (call.campaignId !== undefined) q.set('campaignId', call.campaignId);
  return q.toString();
}

/**
 * The dialer, except that a provider error quoting what we sent (Twilio's messages can quote the
 * `Url`, which carries TELEPHONY_SHARED_SECRET) names `***` in place of the secret: the message
 * reaches API answers, logs and the call's end reason.
 */
function hidingSecret(dialer: OutboundDialer, secret: string | undefined): OutboundDialer {
  if (!secret) return dialer;
  return {
    provider: dialer.provider,
    dial: (call) =>
      dialer.dial(call).catch((err: unknown) => {
        if (!(err instanceof ProviderError) || !err.message.includes(secret)) throw err;
        throw new ProviderError({
          provider: err.provider,
          kind: err.kind,
          status: err.status,
          code: err.code,
          moreInfo: err.moreInfo,
          retryAfterMs: err.retryAfterMs,
          retryable: err.retryable,
          message: err.message.replaceAll(secret, '***'),
        });
      }),
  };
}
