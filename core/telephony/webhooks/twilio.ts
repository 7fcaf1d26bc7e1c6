import type { Logger } from '../../observability/log.ts';
import { verifyTwilioRequest } from '../signatures/twilio.ts';
import type { CallAdmission } from './admission.ts';
import { attr, badRequest, forbidden, formParams, signedUrl, xml } from './http.ts';

export interface TwilioWebhookOptions {
  admission: CallAdmission;
  log: Logger;
  authTokens: string[];
  verify: boolean;
  publicBaseUrl: string;
  wsBaseUrl: string;
  /** Ends a live session of this call wherever it runs (status callback). */
}

/**
 * Twilio's voice webhook and status callback. The voice webhook answers with TwiML that
 * connects a two-way Media Stream back to core (`<Connect><Stream>`: `<Start>` would be
 * one-way) carrying the stream token as a `<Parameter>`; a full house gets
 * `<Reject reason="busy"/>`, never an error. Source: Twilio TwiML `<Stream>` and `<Reject>` docs.
 */
export class TwilioWebhooks {
  constructor(private readonly opts: TwilioWebhookOptions) {}

  /** Parses and verifies; returns the form fields, or the 400/403 to answer. */
  private async read(req: Request, url: URL): Promise<Record<string, string> | Response> {
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
    if (this.opts.verify) {
      const signature = req.headers.get('x-twilio-signature');
      const ok = signedUrl(req, url, this.opts.publicBaseUrl).some(
        (candidate) =>
          verifyTwilioRequest({
            url: candidate,
            signature,
            authTokens: this.opts.authTokens,
            ...(isJson ? { rawBody: raw } : { params: new URLSearchParams(raw) }),
          }).ok,
      );
      if (!ok) return forbidden(signature ? 'mismatch' : 'missing');
    }
    return params;
  }

  /** `POST /telephony/twilio/voice` */
  async voice(req: Request, url: URL): Promise<Response> {
    const params = await this.read(req, url);
    if (params instanceof Response) return params;
    const callSid = params.CallSid;
    if (!callSid) return badRequest('missing_field', 'CallSid is required');
    // Calls we place carry our call id in the (signed) URL; inbound calls are known by their sid.
    const callId = url.searchParams.get('callId') || callSid;
    const admission = await this.opts.admission.admit({
      provider: 'twilio',
      callId,
      providerCallId: callSid,
      to: params.To ?? params.Called ?? '',
      from: params.From ?? params.Caller ?? '',
      agentId: url.searchParams.get('agentId') ?? undefined,
      campaignId: url.searchParams.get('campaignId') ?? undefined,
    });
    if (!admission.ok) {
      this.opts.log.info({ callId, provider: 'twilio', reason: admission.reason }, 'call rejected');
      return xml(
        `<Response><Reject reason="${admission.reason === 'at_capacity' ? 'busy' : 'rejected'}"/></Response>`,
      );
    }
    const streamUrl = `${this.opts.wsBaseUrl}/telephony/twilio/stream`;
    return xml(
      `<Response><Connect><Stream url="${attr(streamUrl)}">` +
        `<Parameter name="token" value="${attr(admission.token)}"/>` +
        `<Parameter name="agentId" value="${attr(admission.agentId)}"/>` +
        '</Stream></Connect></Response>',
    );
  }

  /** `POST /telephony/twilio/status` */
  async status(req: Request, url: URL): Promise<Response> {
    const params = await this.read(req, url);
    if (params instanceof Response) return params;
    const callSid = params.CallSid;
    if (!callSid) return new Response(null, { status: 204 });
    const callId = url.searchParams.get('callId') || callSid;
    await this.opts.admission.statusChanged({
      provider: 'twilio',
      callId,
      providerCallId: callSid,
      status: params.CallStatus ?? '',
      agentId: url.searchParams.get('agentId') || undefined,
    });
    return new Response(null, { status: 204 });
  }
}
