/**
 * The secrets a stage needs, as `sst.Secret`s. Each is set once per stage with
 * `sst secret set <Name> <value> --stage <stage>` (docs/RUNBOOK.md) and reaches both services
 * twice over: linked (SST's `Resource.<Name>`), and as the plain environment variable the
 * services read at boot (core/config/settings.ts).
 */

export interface SecretSpec {
  /** The `sst.Secret` name: what `sst secret set` takes. */
  name: string;
  /** The environment variable the services read. */
  env: string;
  /** Why the platform needs it. */
  purpose: string;
  /**
   * Only stages whose agents use this vendor need it: unset, it deploys empty (the services read
   * an empty value as unset) and agents naming the vendor are reported not ready.
   */
  optional?: true;
}

export const SECRETS: readonly SecretSpec[] = [
  { name: 'RealtimeApiKey', env: 'REALTIME_API_KEY', purpose: 'server-side key for /realtime/voice' },
  {
    name: 'RealtimeWsSecret',
    env: 'REALTIME_WS_SECRET',
    purpose: 'HMAC key of media-WebSocket tokens (≥ 16 chars)',
  },
  {
    name: 'JambonzWebhookSecret',
    env: 'JAMBONZ_WEBHOOK_SECRET',
    purpose: 'checks Jambonz webhook signatures',
  },
  { name: 'JambonzAccountSid', env: 'JAMBONZ_ACCOUNT_SID', purpose: 'Jambonz REST account' },
  { name: 'JambonzApiKey', env: 'JAMBONZ_API_KEY', purpose: 'Jambonz REST key (hang-up, originate)' },
  { name: 'TwilioAccountSid', env: 'TWILIO_ACCOUNT_SID', purpose: 'Twilio REST account' },
  { name: 'TwilioAuthToken', env: 'TWILIO_AUTH_TOKEN', purpose: 'Twilio REST and webhook signatures' },
  { name: 'TelnyxPublicKey', env: 'TELNYX_PUBLIC_KEY', purpose: 'checks Telnyx Ed25519 webhook signatures' },
  {
    name: 'TelephonyForwarderSecret',
    env: 'TELEPHONY_FORWARDER_SECRET',
    purpose: 'webhook Lambda → core: proves the forwarded original URL (≥ 16 chars, no spaces)',
  },
  { name: 'AdminApiKey', env: 'ADMIN_API_KEY', purpose: 'bootstrap admin key of the /v1 API' },
  { name: 'OpenaiApiKey', env: 'OPENAI_API_KEY', purpose: 'LLM and TTS', optional: true },
  { name: 'DeepgramApiKey', env: 'DEEPGRAM_API_KEY', purpose: 'streaming speech-to-text', optional: true },
  { name: 'ElevenlabsApiKey', env: 'ELEVENLABS_API_KEY', purpose: 'text-to-speech', optional: true },
];
