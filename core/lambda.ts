/**
 * The voice-webhook Lambda: API Gateway (HTTP API) in front, the core behind (docs/architecture.md,
 * "Entry points"). It forwards each provider webhook to the core unchanged and
 * hands back the core's answer unchanged, so providers see one stable public URL while core
 * nodes come and go. It adds the public URL the provider signed, and the forwarder secret that
 * makes the core believe it (TELEPHONY_FORWARDER_SECRET); headers a caller sent under those
 * names are never passed on. It runs on the Lambda Node.js runtime: only `node:` built-ins and the
 * global `fetch` here, no Bun APIs and no imports from the rest of the code base.
 *
 * Event and result shapes: AWS docs, "Create AWS Lambda proxy integrations for HTTP APIs in API
 * Gateway", payload format version 2.0 (header names lower-case, duplicates comma-joined;
 * `rawPath` + `rawQueryString` as received; `isBase64Encoded` bodies; result `statusCode`,
 * `headers`, `body`, `isBase64Encoded`). With a named stage `rawPath` starts with the stage, and
 * behind a custom-domain API mapping it lacks the mapping's base path: deploy on `$default`
 * without a base path so `rawPath` is the path the provider called.
 */
import { Buffer } from 'node:buffer';
import process from 'node:process';

/** API Gateway HTTP API event, payload format 2.0 (the fields this forwarder reads). */
export interface HttpApiEvent {
  version: string;
  routeKey?: string;
  rawPath: string;
  rawQueryString?: string;
  headers?: Record<string, string | undefined>;
  requestContext: {
    domainName?: string;
    requestId?: string;
    http: { method: string; path?: string; sourceIp?: string; userAgent?: string };
  };
  body?: string;
  isBase64Encoded?: boolean;
}

/** What API Gateway turns back into the HTTP response. */
export interface HttpApiResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  isBase64Encoded: boolean;
}

export interface ForwarderConfig {
  /** The core's private base URL (CORE_INTERNAL_URL), e.g. `http://core.internal:8081`. */
  coreUrl: string;
  /** Give up on the core after this long (FORWARD_TIMEOUT_MS); below API Gateway's 30 s cap. */
  timeoutMs: number;
  /**
   * TELEPHONY_FORWARDER_SECRET, shared with the core: sent with every forwarded request, it is
   * what makes the core trust {@link ORIGINAL_URL_HEADER}. Never logged.
   */
  forwarderSecret: string;
}

export const DEFAULT_FORWARD_TIMEOUT_MS = 5_000;
/** API Gateway HTTP APIs stop waiting at 30 s; leave room to answer 503 before that. */
const MAX_FORWARD_TIMEOUT_MS = 29_000;

/** Tells the core the public URL the provider signed (Twilio signs the full URL it requested). */
export const ORIGINAL_URL_HEADER = 'x-sipai-original-url';
/** Proves to the core that a request came through this forwarder (so its original URL is ours). */
export const FORWARDER_SECRET_HEADER = 'x-sipai-forwarder-secret';
/** The forwarder secrets accepted, as the core's setting: a header value, so no spaces. */
const FORWARDER_SECRET_SHAPE = /^\S{16,256}$/;

/**
 * Request headers the core needs: the providers' signature headers (X-Twilio-Signature,
 * Jambonz-Signature, Telnyx's Ed25519 pair), the body's content type, Twilio's idempotency token
 * for de-duplicating retries, and TELEPHONY_SHARED_SECRET as the core takes it: the Basic auth
 * Twilio (from credentials in its URL) and Jambonz put on webhooks, or `X-Telephony-Secret`.
 */
const FORWARDED_HEADERS = [
  'content-type',
  'authorization',
  'x-telephony-secret',
  'user-agent',
  'x-twilio-signature',
  'i-twilio-idempotency-token',
  'jambonz-signature',
  'telnyx-signature-ed25519',
  'telnyx-timestamp',
];

/** Response headers about the core's connection or its own framing; API Gateway sets its own. */
const DROPPED_RESPONSE_HEADERS = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'content-encoding',
  'date',
]);

const TEXTUAL = /^(?:text\/|application\/(?:json|xml|x-www-form-urlencoded|javascript)|[^;]*\+(?:json|xml))/i;

/**
 * Reads CORE_INTERNAL_URL, FORWARD_TIMEOUT_MS and TELEPHONY_FORWARDER_SECRET; a bad value throws an
 * error naming it (never showing the secret).
 */
export function configFromEnv(env: Record<string, string | undefined> = process.env): ForwarderConfig {
  const coreUrl = env.CORE_INTERNAL_URL?.trim();
  if (!coreUrl) throw new Error('CORE_INTERNAL_URL is not set: the URL the core answers on inside the VPC');
  let parsed: URL;
  try {
    parsed = new URL(coreUrl);
  } catch {
    throw new Error(`CORE_INTERNAL_URL must be an http(s) URL, got "${coreUrl}"`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new Error(`CORE_INTERNAL_URL must be an http(s) URL, got "${coreUrl}"`);
  }
  const rawTimeout = env.FORWARD_TIMEOUT_MS?.trim();
  let timeoutMs = DEFAULT_FORWARD_TIMEOUT_MS;
  if (rawTimeout) {
    timeoutMs = Number(rawTimeout);
    if (!/^\d+$/.test(rawTimeout) || timeoutMs < 1 || timeoutMs > MAX_FORWARD_TIMEOUT_MS) {
      throw new Error(
        `FORWARD_TIMEOUT_MS must be a whole number from 1 to ${MAX_FORWARD_TIMEOUT_MS}, got "${rawTimeout}"`,
      );
    }
  }
  const forwarderSecret = env.TELEPHONY_FORWARDER_SECRET ?? '';
  if (!FORWARDER_SECRET_SHAPE.test(forwarderSecret)) {
    throw new Error(
      "TELEPHONY_FORWARDER_SECRET must be set to the core's value (16-256 characters without spaces)",
    );
  }
  return { coreUrl: coreUrl.replace(/\/+$/, ''), timeoutMs, forwarderSecret };
}

/**
 * The provider URLs the runbooks configure in Twilio and Telnyx, `{gateway}/webhooks/<provider>/
 * <voice|status>`, and core's route for each. Every other path is forwarded as it is.
 */
export const GATEWAY_PATH_ALIASES: Readonly<Record<string, string>> = {
  '/webhooks/twilio/voice': '/telephony/twilio/voice',
  '/webhooks/twilio/status': '/telephony/twilio/status',
  '/webhooks/telnyx/voice': '/telephony/telnyx/voice',
  '/webhooks/telnyx/status': '/telephony/telnyx/status',
};

/** Core's path for a path the gateway received (an alias's target, or the path itself). */
export function corePathOf(rawPath: string): string {
  return Object.hasOwn(GATEWAY_PATH_ALIASES, rawPath) ? (GATEWAY_PATH_ALIASES[rawPath] as string) : rawPath;
}

/** The URL the provider requested, as it signed it: scheme, public host, raw path and query. */
export function originalUrl(event: HttpApiEvent): { url: string; proto: string; host: string } {
  const headers = event.headers ?? {};
  const proto = firstValue(headers['x-forwarded-proto']) ?? 'https';
  let host = headers.host ?? event.requestContext.domainName ?? 'localhost';
  const port = firstValue(headers['x-forwarded-port']);
  const defaultPort = proto === 'http' ? '80' : '443';
  if (port && port !== defaultPort && !host.includes(':')) host = `${host}:${port}`;
  const query = event.rawQueryString ? `?${event.rawQueryString}` : '';
  return { url: `${proto}://${host}${event.rawPath}${query}`, proto, host };
}

/** A forwarder bound to one configuration: what `handler` uses, and what tests build directly. */
export function createForwarder(config: ForwarderConfig): (event: HttpApiEvent) => Promise<HttpApiResult> {
  return async (event) => {
    const method = event.requestContext.http.method.toUpperCase();
    const original = originalUrl(event);
    const query = event.rawQueryString ? `?${event.rawQueryString}` : '';
    // The original URL keeps the path the provider called: its signature covers that one.
    const target = `${config.coreUrl}${corePathOf(event.rawPath)}${query}`;

    const headers: Record<string, string> = {};
    for (const name of FORWARDED_HEADERS) {
      const value = event.headers?.[name];
      if (value !== undefined) headers[name] = value;
    }
    headers['x-forwarded-proto'] = original.proto;
    headers['x-forwarded-host'] = original.host;
    headers[ORIGINAL_URL_HEADER] = original.url;
    headers[FORWARDER_SECRET_HEADER] = config.forwarderSecret;
    const sourceIp = event.requestContext.http.sourceIp;
    if (sourceIp) headers['x-forwarded-for'] = sourceIp;
    if (event.requestContext.requestId) headers['x-request-id'] = event.requestContext.requestId;

    // The exact bytes the provider sent: signatures are computed over them.
    const hasBody = method !== 'GET' && method !== 'HEAD' && event.body !== undefined;
    const body = hasBody
      ? Buffer.from(event.body ?? '', event.isBase64Encoded ? 'base64' : 'utf8')
      : undefined;

    const signal = AbortSignal.timeout(config.timeoutMs);
    try {
      const res = await fetch(target, {
        method,
        headers,
        ...(body === undefined ? {} : { body: new Uint8Array(body) }),
        signal,
        redirect: 'manual',
      });
      const bytes = Buffer.from(await res.arrayBuffer());
      const outHeaders: Record<string, string> = {};
      res.headers.forEach((value, name) => {
        if (!DROPPED_RESPONSE_HEADERS.has(name)) outHeaders[name] = value;
      });
      const textual = bytes.length === 0 || TEXTUAL.test(res.headers.get('content-type') ?? '');
      return {
        statusCode: res.status,
        headers: outHeaders,
        body: textual ? bytes.toString('utf8') : bytes.toString('base64'),
        isBase64Encoded: !textual,
      };
    } catch (err) {
      const reason = signal.aborted ? 'timeout' : 'unreachable';
      log('error', 'core unavailable', {
        reason,
        timeoutMs: config.timeoutMs,
        method,
        path: event.rawPath,
        requestId: event.requestContext.requestId,
        error: err instanceof Error ? err.message : String(err),
      });
      return {
        statusCode: 503,
        headers: { 'content-type': 'application/json', 'retry-after': '1' },
        body: JSON.stringify({
          error: {
            code: 'core_unavailable',
            message:
              reason === 'timeout'
                ? `the voice core did not answer within ${config.timeoutMs} ms`
                : 'the voice core could not be reached',
          },
        }),
        isBase64Encoded: false,
      };
    }
  };
}

let forward: ((event: HttpApiEvent) => Promise<HttpApiResult>) | undefined;

/** The Lambda entry point. Configuration is read on the first invocation and kept warm. */
export async function handler(event: HttpApiEvent): Promise<HttpApiResult> {
  forward ??= createForwarder(configFromEnv());
  return forward(event);
}

/** One JSON line per event, pino-style: a fixed message, data in fields, never bodies. */
function log(level: 'info' | 'error', msg: string, fields: Record<string, unknown>): void {
  const line = { level, time: new Date().toISOString(), service: 'voice-webhook', msg, ...fields };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

/** `x-forwarded-*` may arrive comma-joined when a proxy sits in front; the first hop is the client's. */
function firstValue(value: string | undefined): string | undefined {
  const first = value?.split(',')[0]?.trim();
  return first ? first : undefined;
}
