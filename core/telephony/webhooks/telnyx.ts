import type { KeyObject } from 'node:crypto';
import type { Logger } from '../../observability/log.ts';
import { verifyTelnyxRequest } from '../signatures/telnyx.ts';
import type { CallAdmission } from './admission.ts';
import { attr, badRequest, forbidden, formParams, serviceUnavailable, xml } from './http.ts';

export interface TelnyxWebhookOptions {
  admission: CallAdmission;
  log: Logger;
  publicKey: KeyObject | null;
  verify: boolean;
  wsBaseUrl: string;
  /** Longest call, seconds: the `<Pause>` that keeps the TeXML call up while it streams. */
  maxDurationSec: number;
}

/**
 * Telnyx TeXML voice webhook and status callback (TwiML-compatible form posts, signed with
 * Ed25519). An admitted call gets `<Start><Stream bidirectionalMode="rtp">` plus a long
 * `<Pause>`; the stream token rides in the stream URL because Telnyx's stream `start` names the
 * call by its call_control_id, not the TeXML CallSid we admitted. Full house, a Store that is
 * down, or a call that already ended (a replayed webhook): `<Reject reason="busy"/>`. Telnyx
 * signs the body only, not the URL, so nothing in the query chooses the agent or campaign: the
 * called number's route does.
 * Source: Telnyx TeXML `<Stream>` docs (bidirectionalMode, bidirectionalCodec).
 */
export class TelnyxWebhooks {
  constructor(private readonly opts: TelnyxWebhookOptions) {}

  private async read(req: Request): Promise<Record<string, string> | Response> {
    const raw = await req.text();
    if (this.opts.verify) {
      if (!this.opts.publicKey) return forbidden('no_key');
      const result = verifyTelnyxRequest({
        signature: req.headers.get('telnyx-signature-ed25519'),
        timestamp: req.headers.get('telnyx-timestamp'),
        rawBody: raw,
        publicKey: this.opts.publicKey,
      });
      if (!result.ok) return forbidden(result.reason);
    }
    return formParams(raw);
  }

  /** `POST /telephony/telnyx/voice` */
  async voice(req: Request, url: URL): Promise<Response> {
    const params = await this.read(req);
    if (params instanceof Response) return params;
    const callSid = params.CallSid;
    if (!callSid) return badRequest('missing_field', 'CallSid is required');
    if (url.searchParams.has('agentId') || url.searchParams.has('campaignId')) {
      this.opts.log.warn({ callId: callSid, provider: 'telnyx' }, 'unsigned webhook query ignored');
    }
    const admission = await this.opts.admission.admit({
      provider: 'telnyx',
      callId: callSid,
      to: params.To ?? '',
      from: params.From ?? '',
    });
    if (!admission.ok) {
      this.opts.log.info({ callId: callSid, provider: 'telnyx', reason: admission.reason }, 'call rejected');
      const busy =
        admission.reason === 'at_capacity' ||
        admission.reason === 'ended' ||
        admission.reason === 'store_unavailable';
      return xml(`<Response><Reject reason="${busy ? 'busy' : 'rejected'}"/></Response>`);
    }
    const streamUrl = `${this.opts.wsBaseUrl}/telephony/telnyx/stream?token=${encodeURIComponent(admission.token)}`;
    return xml(
      `<Response><Start><Stream url="${attr(streamUrl)}" track="inbound_track" bidirectionalMode="rtp" bidirectionalCodec="PCMU"/></Start>` +
        `<Pause length="${this.opts.maxDurationSec}"/></Response>`,
    );
  }

  /** `POST /telephony/telnyx/status` */
  async status(req: Request): Promise<Response> {
    const params = await this.read(req);
    if (params instanceof Response) return params;
    if (params.CallSid) {
      const accepted = await this.opts.admission.statuses.accept({
        provider: 'telnyx',
        callId: params.CallSid,
        providerCallId: params.CallSid,
        status: params.CallStatus ?? '',
      });
      if (!accepted) return serviceUnavailable('store_unavailable', 'status not accepted now; retry');
    }
    return new Response(null, { status: 204 });
  }
}
