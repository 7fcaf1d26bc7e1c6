import type { Logger } from '../../observability/log.ts';
import { StoreUnavailableError } from '../../store/redis-store.ts';
import { basicCredentials, withUrlCredentials } from '../hook-auth.ts';
import { verifyTwilioRequest } from '../signatures/twilio.ts';
import type { CallAdmission } from './admission.ts';
import {
  attr,
  badRequest,
  forbidden,
  formParams,
  queryOf,
  serviceUnavailable,
  signedUrlCandidates,
  xml,
} from './http.ts';
import type { Claim } from './replay-guard.ts';

export interface TwilioWebhookOptions {
  admission: CallAdmission;
  log: Logger;
  authTokens: string[];
  verify: boolean;
  publicBaseUrl: string;
  wsBaseUrl: string;
  /**
   * TELEPHONY_FORWARDER_SECRET: a request carrying it came through the webhook Lambda, whose
   * `x-sipai-original-url` is then the URL Twilio signed. Unset: that header is ignored.
   */
  forwarderSecret?: string;
}

/** A verified Twilio webhook: its form (or JSON) fields, and the query of the URL Twilio signed. */
interface TwilioDelivery {
  params: Record<string, string>;
  /** Only this query may name our call, agent or campaign: the signature covers it. */
  signedQuery: URLSearchParams;
}

/** Twilio's retry marker: the same value on every delivery attempt of one webhook. */
const IDEMPOTENCY_HEADER = 'i-twilio-idempotency-token';
/** Twilio's tokens are short; a longer one is not Twilio's and is not remembered. */
const MAX_IDEMPOTENCY_TOKEN_LENGTH = 256;

/**
 * Twilio's voice webhook and status callback. The voice webhook answers with TwiML that
 * connects a two-way Media Stream back to core (`<Connect><Stream>`: `<Start>` would be
 * one-way) carrying the stream token as a `<Parameter>`; a full house, a Store that is down,
 * or a call that already ended (a replayed webhook), gets `<Reject reason="busy"/>`, never an
 * error. Calls we placed carry `callId`, `agentId` and `campaignId` in the URL Twilio signs:
 * they are read from the URL the signature verified against, never from an unsigned one.
 * A URL given to Twilio with credentials in it gets Basic auth on its requests (see
 * `../hook-auth.ts`); the signature then verifies against that URL with or without them.
 * Source: Twilio TwiML `<Stream>` and `<Reject>` docs, and "Webhooks security".
 */
export class TwilioWebhooks {
  constructor(private readonly opts: TwilioWebhookOptions) {}

  /** Parses and verifies; returns the delivery, or the 400/403 to answer. */
  private async read(req: Request, url: URL): Promise<TwilioDelivery | Response> {
    const raw = await req.text();
    const isJson = (req.headers.get('content-type') ?? '').includes('json');
    let params: Record<string, string> = {};
    if (isJson) {
      try {
        params = JSON.parse(raw) as Record<string, string>;
      } catch {
        return badRequest('malformed_body', 'body is not valid JSON');
      }
    } else params = formParams(raw);
    // Signatures off (development only): nothing is authenticated, the query included.
    if (!this.opts.verify) return { params, signedQuery: url.searchParams };
    const signature = req.headers.get('x-twilio-signature');
    // A URL configured with credentials (`https://user:pass@host/...`, how Twilio carries
    // TELEPHONY_SHARED_SECRET) reaches us as Basic auth. Twilio's security notes have said the
    // credentials are dropped before signing; its helper libraries (twilio-node, twilio-php)
    // sign the URL with them. Both forms are tried, each with and without the default port.
    const credentials = basicCredentials(req) ?? undefined;
    const candidates = signedUrlCandidates(
      req,
      url,
      this.opts.publicBaseUrl,
      this.opts.forwarderSecret,
    ).flatMap((candidate) =>
      credentials ? [candidate, withUrlCredentials(candidate, credentials)] : [candidate],
    );
    const signed = candidates.find(
      (candidate) =>
        verifyTwilioRequest({
          url: candidate,
          signature,
          authTokens: this.opts.authTokens,
          ...(isJson ? { rawBody: raw } : { params: new URLSearchParams(raw) }),
        }).ok,
    );
    if (signed === undefined) return forbidden(signature ? 'mismatch' : 'missing');
    return { params, signedQuery: queryOf(signed) };
  }

  /** `POST /telephony/twilio/voice` */
  async voice(req: Request, url: URL): Promise<Response> {
    const delivery = await this.read(req, url);
    if (delivery instanceof Response) return delivery;
    const { params, signedQuery } = delivery;
    const callSid = params.CallSid;
    if (!callSid) return badRequest('missing_field', 'CallSid is required');
    // Calls we place carry our call id in the signed URL; inbound calls are known by their sid.
    const callId = signedQuery.get('callId') || callSid;
    const admission = await this.opts.admission.admit({
      provider: 'twilio',
      callId,
      providerCallId: callSid,
      to: params.To ?? params.Called ?? '',
      from: params.From ?? params.Caller ?? '',
      agentId: signedQuery.get('agentId') || undefined,
      campaignId: signedQuery.get('campaignId') || undefined,
    });
    if (!admission.ok) {
      this.opts.log.info({ callId, provider: 'twilio', reason: admission.reason }, 'call rejected');
      const busy =
        admission.reason === 'at_capacity' ||
        admission.reason === 'ended' ||
        admission.reason === 'store_unavailable';
      return xml(`<Response><Reject reason="${busy ? 'busy' : 'rejected'}"/></Response>`);
    }
    const streamUrl = `${this.opts.wsBaseUrl}/telephony/twilio/stream`;
    return xml(
      `<Response><Connect><Stream url="${attr(streamUrl)}">` +
        `<Parameter name="token" value="${attr(admission.token)}"/>` +
        `<Parameter name="agentId" value="${attr(admission.agentId)}"/>` +
        '</Stream></Connect></Response>',
    );
  }

  /**
   * `POST /telephony/twilio/status`. A delivery Twilio retries carries the same idempotency
   * token: only the first one is handled (given back if handling it fails, for the next retry).
   */
  async status(req: Request, url: URL): Promise<Response> {
    const delivery = await this.read(req, url);
    if (delivery instanceof Response) return delivery;
    const { params, signedQuery } = delivery;
    const callSid = params.CallSid;
    if (!callSid) return new Response(null, { status: 204 });
    const idempotencyToken = req.headers.get(IDEMPOTENCY_HEADER);
    let claim: Claim | null | undefined;
    if (
      idempotencyToken &&
      idempotencyToken.length <= MAX_IDEMPOTENCY_TOKEN_LENGTH &&
      this.opts.admission.storeUp
    ) {
      try {
        claim = await this.opts.admission.replays.claim(`twilio:${idempotencyToken}`);
      } catch (err) {
        // The Store is gone: the status's own claim still drops a duplicate once it is back.
        if (!(err instanceof StoreUnavailableError)) throw err;
      }
    }
    if (claim === null) return new Response(null, { status: 204 });
    const callId = signedQuery.get('callId') || callSid;
    let accepted: boolean;
    try {
      accepted = await this.opts.admission.statuses.accept({
        provider: 'twilio',
        callId,
        providerCallId: callSid,
        status: params.CallStatus ?? '',
        agentId: signedQuery.get('agentId') || undefined,
      });
    } catch (err) {
      await claim?.undo().catch(() => {});
      throw err;
    }
    if (!accepted) {
      await claim?.undo().catch(() => {});
      return serviceUnavailable('store_unavailable', 'status not accepted now; retry');
    }
    return new Response(null, { status: 204 });
  }
}
