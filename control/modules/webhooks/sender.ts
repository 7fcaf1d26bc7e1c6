import { isIP } from 'node:net';
import { signatureOf } from '../../../core/auth/standard-webhooks.ts';
import { checkDestination, DestinationError, type Resolve } from './destination.ts';

/**
 * One signed webhook request (Standard Webhooks) and what came of it. Shared by the dispatcher
 * and `POST /v1/webhooks/{id}/test`, so a test request is exactly what deliveries look like.
 */

/** What one attempt came to. */
export interface AttemptResult {
  ok: boolean;
  /** The receiver's status code; null when it never answered. */
  status: number | null;
  /** Why it failed, for the delivery log (never a secret). */
  error: string | null;
  /** Worth trying again: a network error, a timeout, 408, 429 or 5xx. */
  retryable: boolean;
  /** What the receiver's `Retry-After` asked for, in ms. */
  retryAfterMs: number | null;
  durationMs: number;
}

export interface SendOptions {
  url: string;
  /** The `webhook-id`: the event id, the same on every attempt. */
  id: string;
  body: string;
  /** Signing secrets: the current one, and the previous one while a rotation overlaps. */
  secrets: string[];
  timeoutMs: number;
  allowPrivate: boolean;
  resolve?: Resolve;
  nowSec?: number;
  fetch?: typeof fetch;
}

/** How requests introduce themselves to receivers. */
const USER_AGENT = 'sipai-webhooks/1';

/**
 * Headers signing `body` with every secret (space-separated `v1,` signatures, as the scheme
 * allows, so receivers holding either secret of a rotation verify).
 */
export function signedHeaders(
  id: string,
  body: string,
  secrets: string[],
  nowSec: number,
): Record<string, string> {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(nowSec),
    'webhook-signature': secrets.map((s) => signatureOf(s, id, nowSec, body)).join(' '),
  };
}

/** `Retry-After` (seconds or an HTTP date) in ms, or null. */
export function retryAfterMsOf(value: string | null, nowMs = Date.now()): number | null {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - nowMs);
}

/** Whether a status code is worth retrying. */
export function retryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/**
 * POSTs `body`, signed, to the endpoint. The destination is checked (and for plain http pinned
 * to the address checked, so a name cannot be re-pointed between the check and the request);
 * redirects are not followed (a 3xx is a failure: following it would bypass the check).
 */
export async function sendWebhook(opts: SendOptions): Promise<AttemptResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const fail = (error: string, retryable: boolean, status: number | null = null): AttemptResult => ({
    ok: false,
    status,
    error,
    retryable,
    retryAfterMs: null,
    durationMs: elapsed(),
  });
  let target: URL;
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': USER_AGENT,
    ...signedHeaders(opts.id, opts.body, opts.secrets, opts.nowSec ?? Math.floor(Date.now() / 1000)),
  };
  try {
    const { url, addresses } = await checkDestination(opts.url, {
      allowPrivate: opts.allowPrivate,
      resolve: opts.resolve,
    });
    target = url;
    const address = addresses[0];
    if (url.protocol === 'http:' && address && !isIP(url.hostname.replace(/^\[|\]$/g, ''))) {
      headers.host = url.host;
      target = new URL(url.href);
      target.hostname = isIP(address) === 6 ? `[${address}]` : address;
    }
  } catch (err) {
    if (err instanceof DestinationError) return fail(err.message, err.kind === 'unresolvable');
    return fail((err as Error).message, true);
  }
  try {
    const res = await (opts.fetch ?? fetch)(target, {
      method: 'POST',
      headers,
      body: opts.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
    // The answer is not used; drain it so the connection can be reused.
    await res.arrayBuffer().catch(() => undefined);
    if (res.status >= 200 && res.status < 300)
      return {
        ok: true,
        status: res.status,
        error: null,
        retryable: false,
        retryAfterMs: null,
        durationMs: elapsed(),
      };
    return {
      ok: false,
      status: res.status,
      error: `receiver answered ${res.status}`,
      retryable: retryableStatus(res.status),
      retryAfterMs: retryableStatus(res.status) ? retryAfterMsOf(res.headers.get('retry-after')) : null,
      durationMs: elapsed(),
    };
  } catch (err) {
    const e = err as Error;
    const timedOut = e.name === 'TimeoutError' || e.name === 'AbortError';
    return fail(timedOut ? `no answer within ${opts.timeoutMs} ms` : `request failed: ${e.message}`, true);
  }
}
