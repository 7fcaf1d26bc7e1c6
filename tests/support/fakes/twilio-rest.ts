import { randomBytes } from 'node:crypto';

/**
 * A local api.twilio.com for the Call resource (Twilio docs, "Call resource"): HTTP Basic
 * `AccountSid:AuthToken`, form-encoded bodies, `POST …/Calls.json` → 201 call resource,
 * `POST …/Calls/{Sid}.json` → 200, and Twilio's JSON errors `{code, message, more_info, status}`
 * with the codes of its error dictionary (20003, 20404, 21200, 21201, 21211-21213, 21220).
 */
export interface RecordedTwilioRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  /** Form fields, repeated names kept (`getAll('StatusCallbackEvent')`). */
  form: URLSearchParams;
  rawBody: string;
}

export interface FakeTwilioCall {
  sid: string;
  status: 'queued' | 'in-progress' | 'completed';
  params: URLSearchParams;
  updates: URLSearchParams[];
}

/** Makes the next requests fail: with a status (and optional Twilio error code), or by hanging. */
export type TwilioFault = { status: number; code?: number; message?: string } | 'hang';

export interface FakeTwilio {
  url: string;
  accountSid: string;
  authToken: string;
  requests: RecordedTwilioRequest[];
  /** Created calls by sid; set `status` to 'in-progress' to play an answered call. */
  calls: Map<string, FakeTwilioCall>;
  /** Applies to every following request until cleared with `fault(null)`. */
  fault(fault: TwilioFault | null): void;
  stop(): void;
}

const E164 = /^\+[1-9]\d{1,14}$/;
const ENDPOINT = /^(?:\+[1-9]\d{1,14}|sip:.+|client:.+)$/;
const EVENTS = new Set(['initiated', 'ringing', 'answered', 'completed']);

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

/** Twilio's exception body. */
function twilioError(status: number, code: number, message: string): Response {
  return Response.json(
    { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status },
    { status },
  );
}

export function startFakeTwilio(opts: { accountSid?: string; authToken?: string } = {}): FakeTwilio {
  const accountSid = opts.accountSid ?? `AC${hex(16)}`;
  const authToken = opts.authToken ?? hex(16);
  const expectedAuth = `Basic ${btoa(`${accountSid}:${authToken}`)}`;
  const requests: RecordedTwilioRequest[] = [];
  const calls = new Map<string, FakeTwilioCall>();
  const hung: (() => void)[] = [];
  let currentFault: TwilioFault | null = null;

  const resource = (call: FakeTwilioCall, now = new Date()) => ({
    sid: call.sid,
    account_sid: accountSid,
    to: call.params.get('To'),
    from: call.params.get('From'),
    status: call.status,
    direction: 'outbound-api',
    api_version: '2010-04-01',
    date_created: now.toUTCString().replace('GMT', '+0000'),
    date_updated: now.toUTCString().replace('GMT', '+0000'),
    start_time: null,
    end_time: null,
    duration: null,
    price: null,
    uri: `/2010-04-01/Accounts/${accountSid}/Calls/${call.sid}.json`,
  });

  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(req) {
      const { pathname } = new URL(req.url);
      const rawBody = await req.text();
      const isForm = (req.headers.get('content-type') ?? '').startsWith('application/x-www-form-urlencoded');
      const form = new URLSearchParams(isForm ? rawBody : '');
      requests.push({
        method: req.method,
        path: pathname,
        headers: Object.fromEntries(req.headers),
        form,
        rawBody,
      });

      const m = /^\/2010-04-01\/Accounts\/([^/]+)\/Calls(?:\/([^/]+))?\.json$/.exec(pathname);
      if (req.headers.get('authorization') !== expectedAuth || (m && m[1] !== accountSid)) {
        const res = twilioError(401, 20003, 'Authenticate');
        res.headers.set('www-authenticate', 'Basic realm="Twilio API"');
        return res;
      }
      if (!m || req.method !== 'POST') {
        return twilioError(404, 20404, `The requested resource ${pathname} was not found`);
      }

      if (currentFault === 'hang') {
        return new Promise<Response>((resolve) =>
          hung.push(() => resolve(new Response(null, { status: 503 }))),
        );
      }
      if (currentFault) {
        return twilioError(
          currentFault.status,
          currentFault.code ?? 20500,
          currentFault.message ?? 'Internal Server Error',
        );
      }

      const callSid = m[2];
      if (callSid === undefined) {
        const invalid = validateCreate(form);
        if (invalid) return twilioError(400, invalid.code, invalid.message);
        const call: FakeTwilioCall = { sid: `CA${hex(16)}`, status: 'queued', params: form, updates: [] };
        calls.set(call.sid, call);
        return Response.json(resource(call), { status: 201 });
      }

      const call = calls.get(callSid);
      if (!call) return twilioError(404, 20404, `The requested resource ${pathname} was not found`);
      const status = form.get('Status');
      if (status !== null && status !== 'completed' && status !== 'canceled') {
        return twilioError(400, 21200, `Invalid Status: ${status}`);
      }
      if (status === null && !form.has('Twiml') && !form.has('Url')) {
        return twilioError(400, 21200, 'Nothing to update: give Status, Url or Twiml');
      }
      if (form.has('Twiml') || form.has('Url')) {
        if (call.status !== 'in-progress') {
          return twilioError(400, 21220, 'Call is not in-progress. Cannot redirect.');
        }
        if (form.has('Twiml') && !/^\s*<Response[\s>][\s\S]*<\/Response>\s*$/.test(form.get('Twiml')!)) {
          return twilioError(400, 21200, 'Twiml must be a <Response> document');
        }
      }
      call.updates.push(form);
      if (status === 'completed' || status === 'canceled') call.status = 'completed';
      return Response.json(resource(call), { status: 200 });
    },
  });

  return {
    url: `http://127.0.0.1:${server.port}`,
    accountSid,
    authToken,
    requests,
    calls,
    fault(f) {
      currentFault = f;
    },
    stop() {
      for (const release of hung.splice(0)) release();
      server.stop(true);
    },
  };
}

/** Create-call rules with Twilio's error codes. */
function validateCreate(form: URLSearchParams): { code: number; message: string } | null {
  const to = form.get('To');
  const from = form.get('From');
  if (!to) return { code: 21201, message: "No 'To' number is specified" };
  if (!from) return { code: 21213, message: "'From' phone number is required" };
  if (!ENDPOINT.test(to)) return { code: 21211, message: `Invalid 'To' Phone Number: ${to}` };
  if (!E164.test(from) && !from.startsWith('client:')) {
    return { code: 21212, message: `Invalid 'From' Phone Number: ${from}` };
  }
  const url = form.get('Url');
  const twiml = form.get('Twiml');
  if (!url && !twiml && !form.get('ApplicationSid')) {
    return { code: 21200, message: 'Url, Twiml or ApplicationSid is required' };
  }
  for (const name of ['Url', 'StatusCallback']) {
    const value = form.get(name);
    if (value !== null && !isCallbackUrl(value)) {
      return { code: 21200, message: `${name} must be an absolute URL with a valid hostname` };
    }
  }
  for (const event of form.getAll('StatusCallbackEvent')) {
    if (!EVENTS.has(event)) return { code: 21200, message: `Invalid StatusCallbackEvent: ${event}` };
  }
  const method = form.get('StatusCallbackMethod');
  if (method !== null && method !== 'GET' && method !== 'POST') {
    return { code: 21200, message: `Invalid StatusCallbackMethod: ${method}` };
  }
  const amd = form.get('MachineDetection');
  if (amd !== null && amd !== 'Enable' && amd !== 'DetectMessageEnd') {
    return { code: 21200, message: `Invalid MachineDetection: ${amd}` };
  }
  const timeout = form.get('Timeout');
  if (timeout !== null && !/^\d+$/.test(timeout))
    return { code: 21200, message: `Invalid Timeout: ${timeout}` };
  return null;
}

/** An absolute http(s) URL whose host name is valid (credentials before it are allowed). */
function isCallbackUrl(value: string): boolean {
  if (!/^https?:\/\//.test(value)) return false;
  try {
    const { hostname } = new URL(value);
    return hostname !== '' && !hostname.includes('_');
  } catch {
    return false;
  }
}
