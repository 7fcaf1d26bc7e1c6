export {
  type Admission,
  CallAdmission,
  type CallRecord,
  type OfferedCall,
  type Provider,
} from './admission.ts';
export { JambonzWebhooks } from './jambonz.ts';
export { TelnyxWebhooks } from './telnyx.ts';
export { TwilioWebhooks } from './twilio.ts';
