/**
 * Twilio REST call control: place outbound calls, hang up and redirect live ones.
 *
 * Source: Twilio docs, "Call resource" (https://www.twilio.com/docs/voice/api/call-resource):
 * - create: `POST /2010-04-01/Accounts/{AccountSid}/Calls.json`, form-encoded, HTTP Basic
 *   `AccountSid:AuthToken`; `To`, `From`, one of `Url`/`Twiml`/`ApplicationSid`; each status
 *   callback event (`initiated`, `ringing`, `answered`, `completed`) is its own
 *   `StatusCallbackEvent` parameter; answers 201 with the call resource (`sid` = `CA…`);
 * - update: `POST /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json` with `Status=completed`
 *   (hang up) or `Twiml=<Response>…</Response>` (redirect), answers 200.
 * Errors (Twilio docs, "Twilio API responses" and the error dictionary) are JSON
 * `{"code", "message", "more_info", "status"}`, e.g. 20003 (401 Authenticate), 20404 (not found),
 * 21211 (invalid To), 21220 (call not in progress), 20429 (too many requests).
 */
import type { OutboundCall, OutboundDialer } from './originate.ts';
import { ProviderError, parseJsonObject, requestProvider, retryAfterMs } from './provider-error.ts';

export interface TwilioRestOptions {
  /** Default `https://api.twilio.com`. */
  baseUrl?: string;
  accountSid: string;
  authToken: string;
  /** Deadline for each request. Default 10 000 ms. */
  timeoutMs?: number;
}

export type TwilioStatusEvent = 'initiated' | 'ringing' | 'answered' | 'completed';

interface CreateCallBase {
  to: string;
  from: string;
  statusCallback?: string;
  /** Without events Twilio only reports `completed`. */
  statusCallbackEvent?: readonly TwilioStatusEvent[];
  /** Answering machine detection. */
  machineDetection?: 'Enable' | 'DetectMessageEnd';
  /** Seconds to let it ring. */
  timeoutSec?: number;
}

export type TwilioCreateCall = CreateCallBase &
  ({ url: string; twiml?: undefined } | { twiml: string; url?: undefined });

/** Twilio's REST API for one account. Provider side effects for Twilio live here. */
export class TwilioRestClient {
  private readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly authorization: string;

  constructor(private readonly opts: TwilioRestOptions) {
    this.baseUrl = (opts.baseUrl ?? 'https://api.twilio.com').replace(/\/+$/, '');
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.authorization = `Basic ${btoa(`${opts.accountSid}:${opts.authToken}`)}`;
  }

  /** Places an outbound call; resolves to its call sid (`CA…`). */
  async createCall(req: TwilioCreateCall): Promise<string> {
    const form = new URLSearchParams({ To: req.to, From: req.from });
    if (req.url !== undefined) form.set('Url', req.url);
    if (req.twiml !== undefined) form.set('Twiml', req.twiml);
    if (req.statusCallback !== undefined) {
      form.set('StatusCallback', req.statusCallback);
      form.set('StatusCallbackMethod', 'POST');
    }
    for (const event of req.statusCallbackEvent ?? []) form.append('StatusCallbackEvent', event);
    if (req.machineDetection !== undefined) form.set('MachineDetection', req.machineDetection);
    if (req.timeoutSec !== undefined) form.set('Timeout', String(req.timeoutSec));

    const res = await this.post(`${this.accountPath()}/Calls.json`, form);
    const sid = parseJsonObject(res.text)?.sid;
    if (typeof sid !== 'string' || !sid.startsWith('CA')) {
      throw new ProviderError({
        provider: 'twilio',
        kind: 'http',
        status: res.status,
        message: 'twilio answered create call without a call sid',
        retryable: false,
      });
    }
    return sid;
  }

  /** Hangs up a live call. False when Twilio does not know the call (404). */
  async hangup(callSid: string): Promise<boolean> {
    try {
      await this.post(this.callPath(callSid), new URLSearchParams({ Status: 'completed' }));
      return true;
    } catch (err) {
      if (err instanceof ProviderError && err.status === 404) return false;
      throw err;
    }
  }

  /** Replaces a live call's instructions (transfer); `twiml` is a whole `<Response>` document. */
  async redirect(callSid: string, twiml: string): Promise<void> {
    await this.post(this.callPath(callSid), new URLSearchParams({ Twiml: twiml }));
  }

  private accountPath(): string {
    return `/2010-04-01/Accounts/${encodeURIComponent(this.opts.accountSid)}`;
  }

  private callPath(callSid: string): string {
    return `${this.accountPath()}/Calls/${encodeURIComponent(callSid)}.json`;
  }

  private post(path: string, form: URLSearchParams) {
    return requestProvider({
      provider: 'twilio',
      url: this.baseUrl + path,
      method: 'POST',
      headers: {
        authorization: this.authorization,
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      },
      body: form.toString(),
      timeoutMs: this.timeoutMs,
      toError: twilioError,
    });
  }
}

/** Options for dialing through Twilio on behalf of `originateCall`. */
export interface TwilioDialerOptions {
  /** Where Twilio fetches TwiML on answer, or the TwiML itself; carry the call id either way. */
  instructions: (call: OutboundCall) => { url: string } | { twiml: string };
  statusCallback?: (call: OutboundCall) => string;
  statusCallbackEvent?: readonly TwilioStatusEvent[];
  machineDetection?: 'Enable' | 'DetectMessageEnd';
}

/** Adapts the client to `originateCall`. */
export function twilioDialer(client: TwilioRestClient, opts: TwilioDialerOptions): OutboundDialer {
  return {
    provider: 'twilio',
    dial: (call) =>
      client.createCall({
        to: call.to,
        from: call.from,
        ...opts.instructions(call),
        ...(opts.statusCallback ? { statusCallback: opts.statusCallback(call) } : {}),
        ...(opts.statusCallbackEvent ? { statusCallbackEvent: opts.statusCallbackEvent } : {}),
        ...(opts.machineDetection ? { machineDetection: opts.machineDetection } : {}),
        ...(call.timeoutSec === undefined ? {} : { timeoutSec: call.timeoutSec }),
      }),
  };
}

/** `{"code": 21211, "message": "...", "more_info": "...", "status": 400}`, or whatever came back. */
function twilioError(status: number, text: string, headers: Headers): ProviderError {
  const body = parseJsonObject(text);
  const code =
    typeof body?.code === 'number' || typeof body?.code === 'string' ? String(body.code) : undefined;
  const message = typeof body?.message === 'string' ? body.message : text.trim().slice(0, 200);
  const moreInfo = typeof body?.more_info === 'string' ? body.more_info : undefined;
  return new ProviderError({
    provider: 'twilio',
    kind: 'http',
    status,
    ...(code === undefined ? {} : { code }),
    ...(moreInfo === undefined ? {} : { moreInfo }),
    message: `twilio answered ${status}${code ? ` (${code})` : ''}${message ? `: ${message}` : ''}`,
    retryAfterMs: retryAfterMs(headers),
  });
}
