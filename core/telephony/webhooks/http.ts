/** Small HTTP helpers the webhook handlers share. */
import { safeEqualStrings } from '../../auth/constant-time.ts';
import { corePathOf, FORWARDER_SECRET_HEADER, ORIGINAL_URL_HEADER } from '../../lambda.ts';

/**
 * Whether the request came through our webhook Lambda: it carries the forwarder secret
 * (TELEPHONY_FORWARDER_SECRET), compared in constant time. Without a configured secret, never.
 */
export function fromForwarder(req: Request, forwarderSecret: string | undefined): boolean {
  if (!forwarderSecret) return false;
  const given = req.headers.get(FORWARDER_SECRET_HEADER);
  return given !== null && safeEqualStrings(given, forwarderSecret);
}

/**
 * The URLs the provider may have signed, most likely first: behind the Lambda, the public URL it
 * forwards in `x-sipai-original-url` (honoured only from the forwarder, and only for the path
 * actually requested or the gateway alias the Lambda maps to it, `/webhooks/twilio/voice` for
 * `/telephony/twilio/voice`); then our public base URL with the path and query requested. Anyone may
 * send the header, so without the forwarder secret it would let one captured signature pass
 * for any query string.
 */
export function signedUrlCandidates(
  req: Request,
  url: URL,
  publicBaseUrl: string,
  forwarderSecret: string | undefined,
): string[] {
  const candidates: string[] = [];
  const forwarded = req.headers.get(ORIGINAL_URL_HEADER);
  const forwardedPath = forwarded ? pathOf(forwarded) : null;
  if (
    forwarded &&
    fromForwarder(req, forwarderSecret) &&
    forwardedPath !== null &&
    corePathOf(forwardedPath) === url.pathname
  ) {
    candidates.push(forwarded);
  }
  candidates.push(`${publicBaseUrl}${url.pathname}${url.search}`);
  return candidates;
}

/** The query of a full URL, as parameters (empty when it has none or does not parse). */
export function queryOf(fullUrl: string): URLSearchParams {
  try {
    return new URL(fullUrl).searchParams;
  } catch {
    return new URLSearchParams();
  }
}

function pathOf(fullUrl: string): string | null {
  try {
    return new URL(fullUrl).pathname;
  } catch {
    return null;
  }
}

export function xml(body: string, status = 200): Response {
  return new Response(`<?xml version="1.0" encoding="UTF-8"?>${body}`, {
    status,
    headers: { 'content-type': 'text/xml; charset=utf-8' },
  });
}

/** Escapes text for an XML attribute value. */
export function attr(value: string): string {
  return value
    .replaceAll('&', '&amp;')
    .replaceAll('"', '&quot;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;');
}

export function forbidden(reason: string): Response {
  return Response.json(
    { error: { code: 'bad_signature', message: `webhook signature rejected: ${reason}` } },
    { status: 403 },
  );
}

/** 503 with Retry-After: we cannot take this delivery now; the provider should send it again. */
export function serviceUnavailable(code: string, message: string): Response {
  return Response.json({ error: { code, message } }, { status: 503, headers: { 'retry-after': '1' } });
}

export function badRequest(code: string, message: string): Response {
  return Response.json({ error: { code, message } }, { status: 400 });
}

/** Reads a form body (application/x-www-form-urlencoded) from its raw text. */
export function formParams(raw: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(raw)) out[k] = v;
  return out;
}
