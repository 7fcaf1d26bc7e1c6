/** Webhook signature verification for each telephony provider; pure functions, never throw. */
export { DEFAULT_TOLERANCE_SEC } from './freshness.ts';
export { type JambonzRejection, type JambonzRequest, signJambonz, verifyJambonzRequest } from './jambonz.ts';
export {
  parseTelnyxPublicKey,
  signTelnyx,
  type TelnyxPublicKey,
  type TelnyxRejection,
  type TelnyxRequest,
  verifyTelnyxRequest,
} from './telnyx.ts';
export {
  computeTwilioSignature,
  type TwilioParams,
  type TwilioRejection,
  type TwilioRequest,
  verifyTwilioRequest,
} from './twilio.ts';
export type { RawBody, VerifyResult } from './verify-result.ts';
