/** Telephony providers' REST side effects (outbound calls, hang-up, transfer) and origination. */
export {
  type BasicCredentials,
  basicCredentials,
  HOOK_AUTH_USERNAME,
  hookAuthOf,
  withUrlCredentials,
} from './hook-auth.ts';
export {
  type JambonzCallUpdate,
  type JambonzCreateCall,
  type JambonzDialerOptions,
  type JambonzHook,
  JambonzRestClient,
  type JambonzRestOptions,
  type JambonzSpeechDefaults,
  jambonzDialer,
} from './jambonz-rest.ts';
export {
  type OriginateRequest,
  type OriginateResult,
  type OutboundCall,
  type OutboundDialer,
  originateCall,
} from './originate.ts';
export {
  isRetryableStatus,
  ProviderError,
  type ProviderErrorInit,
  type ProviderFailure,
  type ProviderName,
} from './provider-error.ts';
export { TELNYX_CALL_ENDED_CODE, TelnyxRestClient, type TelnyxRestOptions } from './telnyx-rest.ts';
export {
  createTelnyxHangup,
  createTransfer,
  providerCallIdOf,
  type TelnyxHangupFn,
  type TelnyxHangupOptions,
  type TransferConfig,
  TransferError,
  type TransferErrorCode,
  type TransferFn,
  type TransferSession,
  twilioDialTwiml,
} from './transfer.ts';
export {
  type TwilioCreateCall,
  type TwilioDialerOptions,
  TwilioRestClient,
  type TwilioRestOptions,
  type TwilioStatusEvent,
  twilioDialer,
} from './twilio-rest.ts';
