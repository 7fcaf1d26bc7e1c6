import type { Logger } from '../../observability/log.ts';
import { verifyJambonzRequest } from '../signatures/jambonz.ts';
import type { CallAdmission } from './admission.ts';
import { badRequest, forbidden, serviceUnavailable } from './http.ts';

export interface JambonzWebhookOptions {
  admission: CallAdmission;
  log: Logger;
  secrets: string[];
  verify: boolean;
  wsBaseUrl: string;
}

type Verb = Record<string, unknown>;

/**
 * Jambonz's call webhook and call-status hook. An admitted call gets a `listen` verb that opens
 * bidirectional streaming audio back to core at the agent's rate (8 or 16 kHz), with the stream
 * token in its metadata, then `hangup` when the stream ends. A refusal is `sip:decline`: 503 when
 * at capacity or the Store is down, 486 for a call that already ended (a replayed webhook), 404
 * for an unknown number (an outbound leg, already answered, is hung up). Our call, agent and campaign ids come only
 * from the call's `customerData`, inside the signed body (we set it as the REST `tag`).
 * Source: jambonz docs, "listen" and "sip:decline" verbs, and webhook signing.
 */
export class JambonzWebhooks {
  constructor(private readonly opts: JambonzWebhookOptions) {}

  private async read(req: Request): Promise<Record<string, unknown> | Response> {
    const raw = new Uint8Array(await req.arrayBuffer());
    if (this.opts.verify) {
      const result = verifyJambonzRequest({
        header: req.headers.get('jambonz-signature'),
        rawBody: raw,
        secrets: this.opts.secrets,
      });
      if (!result.ok) return forbidden(result.reason);
    }
    try {
      const body = JSON.parse(new TextDecoder().decode(raw)) as unknown;
      if (typeof body !== 'object' || body === null || Array.isArray(body))
        return badRequest('malformed_body', 'body must be a JSON object');
      return body as Record<string, unknown>;
    } catch {
      return badRequest('malformed_body', 'body is not valid JSON');
    }
  }

  /** `POST /telephony/jambonz/call` */
  async call(req: Request): Promise<Response> {
    const body = await this.read(req);
    if (body instanceof Response) return body;
    const callSid = typeof body.call_sid === 'string' ? body.call_sid : '';
    if (!callSid) return badRequest('missing_field', 'call_sid is required');
    const tag = customerData(body);
    const callId = taggedString(tag, 'callId') ?? callSid;
    const outbound = body.direction === 'outbound';
    const admission = await this.opts.admission.admit({
      provider: 'jambonz',
      callId,
      providerCallId: callSid,
      to: String(body.to ?? ''),
      from: String(body.from ?? ''),
      agentId: taggedString(tag, 'agentId'),
      campaignId: taggedString(tag, 'campaignId'),
    });
    let verbs: Verb[];
    if (admission.ok) {
      const rate = admission.sampleRate;
      verbs = [
        {
          verb: 'listen',
          url: `${this.opts.wsBaseUrl}/telephony/jambonz/stream?rate=${rate}`,
          mixType: 'mono',
          sampleRate: rate,
          passDtmf: true,
          bidirectionalAudio: { enabled: true, streaming: true, sampleRate: rate },
          metadata: { token: admission.token, agentId: admission.agentId },
        },
        { verb: 'hangup' },
      ];
    } else {
      this.opts.log.info({ callId, provider: 'jambonz', reason: admission.reason }, 'call rejected');
      verbs = outbound
        ? [{ verb: 'hangup' }]
        : admission.reason === 'at_capacity' || admission.reason === 'store_unavailable'
          ? [{ verb: 'sip:decline', status: 503, reason: 'Service Unavailable' }]
          : admission.reason === 'ended'
            ? [{ verb: 'sip:decline', status: 486, reason: 'Busy Here' }]
            : [{ verb: 'sip:decline', status: 404, reason: 'Not Found' }];
    }
    return Response.json(verbs);
  }

  /** `POST /telephony/jambonz/status` */
  async status(req: Request): Promise<Response> {
    const body = await this.read(req);
    if (body instanceof Response) return body;
    const callSid = typeof body.call_sid === 'string' ? body.call_sid : '';
    if (!callSid) return new Response(null, { status: 204 });
    const tag = customerData(body);
    const callId = taggedString(tag, 'callId') ?? callSid;
    const accepted = await this.opts.admission.statuses.accept({
      provider: 'jambonz',
      callId,
      providerCallId: callSid,
      status: String(body.call_status ?? ''),
      agentId: taggedString(tag, 'agentId'),
    });
    if (!accepted) return serviceUnavailable('store_unavailable', 'status not accepted now; retry');
    return new Response(null, { status: 204 });
  }
}

/**
 * The REST `tag` of a call we placed, echoed on every webhook of the call: `customerData` in
 * Jambonz's payloads (docs.jambonz.org, "tag" verb), `customer_data` where snake-cased.
 */
function customerData(body: Record<string, unknown>): Record<string, unknown> | undefined {
  const data = body.customerData ?? body.customer_data;
  return typeof data === 'object' && data !== null && !Array.isArray(data)
    ? (data as Record<string, unknown>)
    : undefined;
}

function taggedString(tag: Record<string, unknown> | undefined, name: string): string | undefined {
  const value = tag?.[name];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}
