/** Which provider's REST API failed. */
export type ProviderName = 'jambonz' | 'twilio' | 'telnyx';

/** `http`: the provider answered with an error status; otherwise it never answered usably. */
export type ProviderFailure = 'http' | 'timeout' | 'network';

export interface ProviderErrorInit {
  provider: ProviderName;
  kind: ProviderFailure;
  /** The HTTP status; absent for timeouts and connection errors. */
  status?: number;
  /** The provider's own error code when its body carries one (Twilio's `code`, e.g. "21211"). */
  code?: string;
  message: string;
  /** Twilio's `more_info` link. */
  moreInfo?: string;
  /** From a `Retry-After` header, when the provider sent one. */
  retryAfterMs?: number;
  /** Overrides the status rule for provider-specific statuses (e.g. Jambonz 480). */
  retryable?: boolean;
  cause?: unknown;
}

/**
 * A provider REST call that did not succeed. Core errors carry `retryable` (docs/architecture.md, "Conventions"):
 * timeouts, connection errors, 408, 429, 499 and 5xx may succeed when tried again; other 4xx
 * will not until the request changes.
 */
export class ProviderError extends Error {
  override readonly name = 'ProviderError';
  readonly provider: ProviderName;
  readonly kind: ProviderFailure;
  readonly status: number | undefined;
  readonly code: string | undefined;
  readonly moreInfo: string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly retryable: boolean;

  constructor(init: ProviderErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.provider = init.provider;
    this.kind = init.kind;
    this.status = init.status;
    this.code = init.code;
    this.moreInfo = init.moreInfo;
    this.retryAfterMs = init.retryAfterMs;
    this.retryable =
      init.retryable ??
      (init.kind !== 'http' || (init.status !== undefined && isRetryableStatus(init.status)));
  }
}

/** 408, 429, 499 and 5xx: the same request may succeed later (docs/architecture.md, "Conventions"). */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status === 499 || status >= 500;
}

/** What a provider client tells `requestProvider` about one endpoint. */
export interface ProviderRequest {
  provider: ProviderName;
  url: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
  /** Turns a non-2xx answer into the error to throw (parses the provider's error body). */
  toError(status: number, text: string, headers: Headers): ProviderError;
}

/** A 2xx answer, body read in full. */
export interface ProviderResponse {
  status: number;
  text: string;
  headers: Headers;
}

/**
 * One provider HTTP exchange with a hard deadline covering connect, headers and body. Every
 * failure comes back as a ProviderError: timeouts and connection errors are retryable.
 */
export async function requestProvider(req: ProviderRequest): Promise<ProviderResponse> {
  const signal = AbortSignal.timeout(req.timeoutMs);
  let res: Response;
  let text: string;
  try {
    res = await fetch(req.url, {
      method: req.method,
      headers: req.headers,
      ...(req.body === undefined ? {} : { body: req.body }),
      signal,
      redirect: 'manual',
    });
    text = await res.text();
  } catch (err) {
    if (signal.aborted || isAbort(err)) {
      throw new ProviderError({
        provider: req.provider,
        kind: 'timeout',
        message: `${req.provider} did not answer ${req.method} within ${req.timeoutMs} ms`,
        cause: err,
      });
    }
    throw new ProviderError({
      provider: req.provider,
      kind: 'network',
      message: `${req.provider} could not be reached: ${err instanceof Error ? err.message : String(err)}`,
      cause: err,
    });
  }
  if (res.status < 200 || res.status > 299) throw req.toError(res.status, text, res.headers);
  return { status: res.status, text, headers: res.headers };
}

/** Milliseconds from a `Retry-After` header (seconds or an HTTP date), if present and sane. */
export function retryAfterMs(headers: Headers): number | undefined {
  const raw = headers.get('retry-after');
  if (raw === null) return undefined;
  if (/^\d+$/.test(raw.trim())) return Number(raw.trim()) * 1000;
  const at = Date.parse(raw);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** Parses a JSON object body, or returns undefined for anything else (text, HTML, empty). */
export function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
}
