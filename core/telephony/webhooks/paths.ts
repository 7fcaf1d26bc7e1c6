/**
 * The provider-facing URLs core serves (routes in core/app.ts, media sockets in
 * core/realtime/media-server.ts), in one list for what tells people where to point a number:
 * the start banner (local.ts), the API document (control/modules/docs/) and the README.
 */

export type TelephonyProvider = 'twilio' | 'telnyx' | 'jambonz';

/** One webhook a provider calls: which provider, what for, the path, and where it is set. */
export interface ProviderWebhook {
  provider: TelephonyProvider;
  /** `call`: a call arrives (we answer with the provider's verbs); `status`: a call's progress. */
  role: 'call' | 'status';
  method: 'POST';
  path: string;
  /** Where the provider's console takes this URL. */
  setting: string;
  /** What the request is and what core answers. */
  answers: string;
}

export const PROVIDER_WEBHOOKS: readonly ProviderWebhook[] = [
  {
    provider: 'twilio',
    role: 'call',
    method: 'POST',
    path: '/telephony/twilio/voice',
    setting: 'the phone number’s “A call comes in” webhook (HTTP POST)',
    answers:
      'Form post signed with `X-Twilio-Signature`; answered with TwiML `<Connect><Stream>` naming the media WebSocket (403 on a bad signature).',
  },
  {
    provider: 'twilio',
    role: 'status',
    method: 'POST',
    path: '/telephony/twilio/status',
    setting: 'the phone number’s “Call status changes” URL',
    answers: 'Form post signed with `X-Twilio-Signature`; 204. Ends the call’s record and frees its slots.',
  },
  {
    provider: 'telnyx',
    role: 'call',
    method: 'POST',
    path: '/telephony/telnyx/voice',
    setting: 'the TeXML application’s voice URL',
    answers:
      'Form post signed with `telnyx-signature-ed25519`; answered with TeXML `<Connect><Stream>` naming the media WebSocket.',
  },
  {
    provider: 'telnyx',
    role: 'status',
    method: 'POST',
    path: '/telephony/telnyx/status',
    setting: 'the TeXML application’s status callback URL',
    answers: 'Signed with `telnyx-signature-ed25519`; 204.',
  },
  {
    provider: 'jambonz',
    role: 'call',
    method: 'POST',
    path: '/telephony/jambonz/call',
    setting: 'the application’s calling webhook',
    answers:
      'JSON signed with `Jambonz-Signature`; answered with Jambonz verbs (`answer`, `listen` on the media WebSocket).',
  },
  {
    provider: 'jambonz',
    role: 'status',
    method: 'POST',
    path: '/telephony/jambonz/status',
    setting: 'the application’s call status webhook',
    answers: 'JSON signed with `Jambonz-Signature`; 204.',
  },
];

/** Media WebSockets the call webhooks' answers name (with a stream token); never set by hand. */
export const PROVIDER_STREAM_PATHS: Readonly<Record<TelephonyProvider, string>> = {
  twilio: '/telephony/twilio/stream',
  telnyx: '/telephony/telnyx/stream',
  jambonz: '/telephony/jambonz/stream',
};

/** The native voice WebSocket for browsers and SDKs (docs/realtime-protocol.md). */
export const REALTIME_SOCKET_PATHS = ['/realtime/voice', '/v1/realtime/voice'] as const;

/** Display names, for banners and documents. */
export const PROVIDER_NAMES: Readonly<Record<TelephonyProvider, string>> = {
  twilio: 'Twilio',
  telnyx: 'Telnyx',
  jambonz: 'Jambonz',
};
