/**
 * Telnyx Call Control (Voice API v2) for live calls: transfer and hang up.
 *
 * Source: Telnyx API reference, "Call Commands" (https://developers.telnyx.com/api-reference/call-commands/):
 * - every command is `POST {base}/v2/calls/{call_control_id}/actions/{command}` with a JSON body,
 *   `Authorization: Bearer <API key>`; success answers 200 `{"data": {"result": "ok"}}`;
 * - transfer: `{"to": "+18005550100" | "sip:user@host"}` bridges the call to a new leg (on failure
 *   the original call stays up and may be given other commands);
 * - hangup: `{}` ends the call;
 * - errors are `{"errors": [{"code", "title", "detail"}]}`; a command on a call that is over
 *   answers 422 with code `90018` ("Call has already ended"), an unknown id 404.
 * `call_control_id` values look like `v3:…`; like Telnyx's own SDKs we keep `:` unescaped in the path.
 */
import { ProviderError, parseJsonObject, requestProvider, retryAfterMs } from './provider-error.ts';

/** The provider name on this client's errors. */
const TELNYX = 'telnyx';

/** Telnyx's error code for a command sent to a call that already ended. */
export const TELNYX_CALL_ENDED_CODE = '90018';

export interface TelnyxRestOptions {
  /** Default `https://api.telnyx.com` (the client appends `/v2/...`). */
  baseUrl?: string;
  apiKey: string;
  /** Deadline for each request. Default 10 000 ms. */
  timeoutMs?: number;
}

/** Telnyx's Call Control API for one API key. Provider side effects for Telnyx live here. */
export class TelnyxRestClient {
  private readonly baseUrl: string;
  private readonly timeoutMs: number;

  constructor(private readonly opts: TelnyxRestOptions) {
    this.baseUrl = (opts.baseUrl ?? 'https://api.telnyx.com').replace(/\/+$/, '');
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  /**
   * Bridges a live call to `to` (E.164 number or SIP URI). Rejects with a ProviderError when
   * Telnyx refuses, including 422 `90018` when the call is already over.
   */
  async transfer(callControlId: string, to: string): Promise<void> {
    await this.command(callControlId, 'transfer', { to });
  }

  /** Hangs up a live call. False when the call is already over (404, or 422 `90018`). */
  async hangup(callControlId: string): Promise<boolean> {
    try {
      await this.command(callControlId, 'hangup', {});
      return true;
    } catch (err) {
      if (err instanceof ProviderError && isCallGone(err)) return false;
      throw err;
    }
  }

  private command(callControlId: string, action: string, body: Record<string, unknown>) {
    if (!callControlId) throw new TypeError('a Telnyx call_control_id is required');
    return requestProvider({
      provider: TELNYX,
      url: `${this.baseUrl}/v2/calls/${encodePathSegment(callControlId)}/actions/${action}`,
      method: 'POST',
      headers: {
        authorization: `Bearer ${this.opts.apiKey}`,
        'content-type': 'application/json',
        accept: 'application/json',
      },
      body: JSON.stringify(body),
      timeoutMs: this.timeoutMs,
      toError: telnyxError,
    });
  }
}

/**
 * 404 (unknown call) or 422 (Telnyx's `90018`, "call has already ended"): nothing left to hang
 * up. A hangup carries no parameters, so its 422 can only be about the call's state.
 */
function isCallGone(err: ProviderError): boolean {
  return err.kind === 'http' && (err.status === 404 || err.status === 422);
}

/** Escapes what a path segment cannot hold, keeping `:` (call_control_id is `v3:…`). */
function encodePathSegment(value: string): string {
  return value.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@]+/g, encodeURIComponent);
}

/** `{"errors": [{"code": "90018", "title": "...", "detail": "..."}]}`, or whatever came back. */
function telnyxError(status: number, text: string, headers: Headers): ProviderError {
  const errors = parseJsonObject(text)?.errors;
  const first =
    Array.isArray(errors) && typeof errors[0] === 'object' && errors[0] !== null
      ? (errors[0] as Record<string, unknown>)
      : undefined;
  const rawCode = first?.code;
  const code = typeof rawCode === 'string' || typeof rawCode === 'number' ? String(rawCode) : undefined;
  const title = typeof first?.title === 'string' ? first.title : undefined;
  const detail = typeof first?.detail === 'string' ? first.detail : undefined;
  const message = [title, detail].filter(Boolean).join(': ') || text.trim().slice(0, 200);
  return new ProviderError({
    provider: TELNYX,
    kind: 'http',
    status,
    ...(code === undefined ? {} : { code }),
    message: `telnyx answered ${status}${code ? ` (${code})` : ''}${message ? `: ${message}` : ''}`,
    retryAfterMs: retryAfterMs(headers),
  });
}
