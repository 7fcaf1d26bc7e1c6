/** Small HTTP helpers the webhook handlers share. */

/** The URL the provider requested, as it signed it: behind the Lambda, the forwarded public URL. */
export function signedUrl(req: Request, url: URL, publicBaseUrl: string): string[] {
  const candidates: string[] = [];
  const forwarded = req.headers.get('x-sipai-original-url');
  if (forwarded) candidates.push(forwarded);
  candidates.push(`${publicBaseUrl}${url.pathname}${url.search}`);
  return candidates;
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

export function badRequest(code: string, message: string): Response {
  return Response.json({ error: { code, message } }, { status: 400 });
}

/** Reads a form body (application/x-www-form-urlencoded) from its raw text. */
export function formParams(raw: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(raw)) out[k] = v;
  return out;
}
