import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Whether a request may read `/metrics`. With no key configured (METRICS_API_KEY unset) the
 * endpoint stays open, as scrapers inside the network expect; with one, the request must carry
 * `Authorization: Bearer <key>`. Both sides are hashed before comparing, so the comparison takes
 * the same time whatever the sent token's length or content.
 */
export function metricsAuthorized(req: Request, key: string | undefined): boolean {
  if (!key) return true;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(req.headers.get('authorization') ?? '');
  const sent = createHash('sha256')
    .update(m ? m[1] : '', 'utf8')
    .digest();
  const expected = createHash('sha256').update(key, 'utf8').digest();
  return timingSafeEqual(sent, expected) && m !== null;
}

/** The 401 `/metrics` answers when {@link metricsAuthorized} says no. */
export function metricsUnauthorized(): Response {
  return new Response('unauthorized\n', {
    status: 401,
    headers: {
      'content-type': 'text/plain; charset=utf-8',
      'www-authenticate': 'Bearer realm="metrics"',
      'cache-control': 'no-store',
    },
  });
}
