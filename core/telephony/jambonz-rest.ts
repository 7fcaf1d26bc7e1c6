/**
 * Jambonz REST call control: place outbound calls and steer live ones.
 *
 * Sources: docs.jambonz.org, "About the REST API" (Bearer API key; POST answers 201 with
 * `{"sid"}`, updates 204 without body), "create a call" and "update a call"
 * (https://docs.jambonz.org/reference/rest-call-control/calls/), and the server that implements
 * them, jambonz/jambonz-api-server `lib/routes/api/accounts.js`, which adds rules the docs leave
 * out:
 * - without `application_sid`, a call also needs the five `speech_*` defaults;
 * - an update carries exactly one operation;
 * - updates are proxied to the feature server and answered with its status (202 Accepted today,
 *   204 in the docs), so any 2xx is success;
 * - errors carry `{"msg"}` (400/422/500), except 401/404 which have plain text bodies, and
 *   480 `{"msg":"no available feature servers at this time"}` when no feature server is up.
 */
import type { OutboundCall, OutboundDialer } from './originate.ts';
import { ProviderError, parseJsonObject, requestProvider, retryAfterMs } from './provider-error.ts';

export interface JambonzRestOptions {
  /** API server root, e.g. `https://jambonz.cloud/api` (the client appends `/v1/...`). */
  baseUrl: string;
  accountSid: string;
  apiKey: string;
  /** Deadline for each request. Default 10 000 ms. */
  timeoutMs?: number;
}

/** A Jambonz webhook reference; `method` defaults to POST. */
export interface JambonzHook {
  url: string;
  method?: 'GET' | 'POST';
  username?: string;
  password?: string;
}

/** TTS/STT defaults a call needs when no application supplies them. */
export interface JambonzSpeechDefaults {
  synthesizer: { vendor: string; language: string; voice: string };
  recognizer: { vendor: string; language: string };
}

interface CreateCallBase {
  /** Caller id. */
  from: string;
  /** Phone number to dial (E.164). */
  to: string;
  statusHookUrl?: string;
  /** Free metadata; comes back as `customer_data` on every webhook of the call. */
  tag?: Record<string, unknown>;
  /** Seconds to let it ring. */
  timeoutSec?: number;
  /** Carrier (trunk) name to place the call on; Jambonz picks one when absent. */
  trunk?: string;
  /** Basic auth Jambonz sends with the hooks named here (our TELEPHONY_SHARED_SECRET). */
  hookAuth?: { username: string; password: string };
}

export type JambonzCreateCall = CreateCallBase &
  (
    | { applicationSid: string; callHookUrl?: undefined; speech?: JambonzSpeechDefaults }
    | { callHookUrl: string; applicationSid?: undefined; speech: JambonzSpeechDefaults }
  );

/** One live-call operation (the server refuses two in one request). */
export type JambonzCallUpdate =
  | { call_status: 'completed' | 'no-answer' }
  | { call_hook: JambonzHook }
  | { listen_status: 'pause' | 'silence' | 'resume' }
  | { mute_status: 'mute' | 'unmute' };

const UPDATE_OPERATIONS = ['call_status', 'call_hook', 'listen_status', 'mute_status'] as const;

/** Jambonz's REST API for one account. Provider side effects for Jambonz live here. */
export class JambonzRestClient {
  private readonly baseUrl: string;
  private readonly timeoutMs: number;

  constructor(private readonly opts: JambonzRestOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  /** Places an outbound call; resolves to Jambonz's call sid. */
  async createCall(req: JambonzCreateCall): Promise<string> {
    const body: Record<string, unknown> = {
      from: req.from,
      to: { type: 'phone', number: req.to, ...(req.trunk === undefined ? {} : { trunk: req.trunk }) },
    };
    const auth = req.hookAuth ?? {};
    if (req.applicationSid !== undefined) body.application_sid = req.applicationSid;
    if (req.callHookUrl !== undefined) body.call_hook = { url: req.callHookUrl, method: 'POST', ...auth };
    if (req.statusHookUrl !== undefined) {
      body.call_status_hook = { url: req.statusHookUrl, method: 'POST', ...auth };
    }
    if (req.speech !== undefined) {
      body.speech_synthesis_vendor = req.speech.synthesizer.vendor;
      body.speech_synthesis_language = req.speech.synthesizer.language;
      body.speech_synthesis_voice = req.speech.synthesizer.voice;
      body.speech_recognizer_vendor = req.speech.recognizer.vendor;
      body.speech_recognizer_language = req.speech.recognizer.language;
    }
    if (req.timeoutSec !== undefined) body.timeout = req.timeoutSec;
    if (req.tag !== undefined) body.tag = req.tag;

    const res = await this.send('POST', this.callsPath(), body);
    const sid = parseJsonObject(res.text)?.sid;
    if (typeof sid !== 'string' || sid.length === 0) {
      throw new ProviderError({
        provider: 'jambonz',
        kind: 'http',
        status: res.status,
        message: 'jambonz answered create call without a call sid',
        retryable: false,
      });
    }
    return sid;
  }

  /** Applies one operation to a live call. */
  async updateCall(callSid: string, update: JambonzCallUpdate): Promise<void> {
    const present = UPDATE_OPERATIONS.filter((op) => (update as Record<string, unknown>)[op] !== undefined);
    if (present.length !== 1) {
      throw new TypeError(
        `a Jambonz call update carries exactly one operation, got ${present.join(', ') || 'none'}`,
      );
    }
    const body =
      'call_hook' in update ? { call_hook: { method: 'POST', ...update.call_hook } } : (update as object);
    await this.send('PUT', `${this.callsPath()}/${encodeURIComponent(callSid)}`, body);
  }

  /** Hangs up a live call. False when Jambonz no longer knows the call (already over). */
  async hangup(callSid: string): Promise<boolean> {
    try {
      await this.updateCall(callSid, { call_status: 'completed' });
      return true;
    } catch (err) {
      if (err instanceof ProviderError && err.status === 404) return false;
      throw err;
    }
  }

  /**
   * Moves a live call to new instructions (transfer): Jambonz fetches verbs from `hookUrl`, with
   * `hookAuth` as its Basic auth when given (TELEPHONY_SHARED_SECRET).
   */
  async redirect(
    callSid: string,
    hookUrl: string,
    hookAuth?: { username: string; password: string },
  ): Promise<void> {
    await this.updateCall(callSid, { call_hook: { url: hookUrl, method: 'POST', ...hookAuth } });
  }

  private callsPath(): string {
    return `/v1/Accounts/${encodeURIComponent(this.opts.accountSid)}/Calls`;
  }

  private send(method: 'POST' | 'PUT', path: string, body: unknown) {
    return requestProvider({
      provider: 'jambonz',
      url: this.baseUrl + path,
      method,
      headers: {
        authorization: `Bearer ${this.opts.apiKey}`,
        'content-type': 'application/json',
        accept: 'application/json',
      },
      body: JSON.stringify(body),
      timeoutMs: this.timeoutMs,
      toError: jambonzError,
    });
  }
}

/** Options for dialing through Jambonz on behalf of `originateCall`. */
export interface JambonzDialerOptions {
  /** Where Jambonz fetches the call's verbs; carry the call id so the webhook finds the call. */
  callHookUrl: (call: OutboundCall) => string;
  statusHookUrl?: (call: OutboundCall) => string;
  speech: JambonzSpeechDefaults;
  trunk?: string;
  /**
   * An application (JAMBONZ_APPLICATION_SID) whose call hook supplies the verbs instead of
   * `callHookUrl`; the call's ids still ride in `tag`, which its webhooks echo back.
   */
  applicationSid?: string;
  /** Basic auth for the hooks the request names (TELEPHONY_SHARED_SECRET). */
  hookAuth?: { username: string; password: string };
}

/**
 * Adapts the client to `originateCall`. The call's ids ride in `tag`, so every Jambonz webhook
 * of the call carries them back as `customer_data`.
 */
export function jambonzDialer(client: JambonzRestClient, opts: JambonzDialerOptions): OutboundDialer {
  return {
    provider: 'jambonz',
    dial: (call) =>
      client.createCall({
        from: call.from,
        to: call.to,
        ...(opts.applicationSid === undefined
          ? { callHookUrl: opts.callHookUrl(call), speech: opts.speech }
          : { applicationSid: opts.applicationSid }),
        ...(opts.hookAuth === undefined ? {} : { hookAuth: opts.hookAuth }),
        ...(opts.statusHookUrl ? { statusHookUrl: opts.statusHookUrl(call) } : {}),
        ...(opts.trunk === undefined ? {} : { trunk: opts.trunk }),
        ...(call.timeoutSec === undefined ? {} : { timeoutSec: call.timeoutSec }),
        tag: {
          ...call.metadata,
          callId: call.callId,
          agentId: call.agentId,
          ...(call.campaignId === undefined ? {} : { campaignId: call.campaignId }),
        },
      }),
  };
}

/** Jambonz error bodies are `{"msg": "..."}` (api-server `lib/routes/api/error.js`) or plain text. */
function jambonzError(status: number, text: string, headers: Headers): ProviderError {
  const msg = parseJsonObject(text)?.msg;
  const detail = typeof msg === 'string' && msg.length > 0 ? msg : text.trim().slice(0, 200);
  return new ProviderError({
    provider: 'jambonz',
    kind: 'http',
    status,
    message: `jambonz answered ${status}${detail ? `: ${detail}` : ''}`,
    retryAfterMs: retryAfterMs(headers),
    // 480 "no available feature servers at this time": capacity comes back on its own.
    ...(status === 480 ? { retryable: true } : {}),
  });
}
