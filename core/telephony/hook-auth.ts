/**
 * Basic auth on the webhooks providers send us: how TELEPHONY_SHARED_SECRET rides on the URLs and
 * hooks we hand to providers, and how a request's Basic credentials are read back.
 *
 * - Twilio cannot add a header to its webhooks, but it sends Basic auth for a URL that carries
 *   credentials (`https://user:pass@host/path`): its first request has no `Authorization`, and
 *   after a 401 with `WWW-Authenticate: Basic` it repeats the request with one (Twilio docs,
 *   "Security", HTTP authentication). Twilio warns against special characters in them, which is
 *   why the secret is restricted to URL-safe characters (`core/config/settings.ts`).
 * - Jambonz hooks name their Basic auth next to the URL (`{url, method, username, password}`).
 * - core checks the password only; the user name is ours to choose.
 */

/** The user name of the Basic auth our outbound calls' hooks carry. */
export const HOOK_AUTH_USERNAME = 'sipai';

/** Basic credentials as a request carried them. */
export interface BasicCredentials {
  username: string;
  password: string;
}

/** The Basic auth a provider should send on our hooks: none without a shared secret. */
export function hookAuthOf(sharedSecret: string | undefined): BasicCredentials | undefined {
  return sharedSecret ? { username: HOOK_AUTH_USERNAME, password: sharedSecret } : undefined;
}

const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;

/**
 * `url` with `username:password@` in front of its host, in place of any credentials it had; the
 * rest of the URL is kept byte for byte (Twilio signs it as given). Unchanged without credentials.
 */
export function withUrlCredentials(url: string, credentials: BasicCredentials | undefined): string {
  const scheme = SCHEME.exec(url)?.[0];
  if (!credentials || !scheme) return url;
  const rest = url.slice(scheme.length);
  const authorityEnd = rest.search(/[/?#]/);
  const authority = authorityEnd === -1 ? rest : rest.slice(0, authorityEnd);
  const host = authority.slice(authority.lastIndexOf('@') + 1);
  return `${scheme}${credentials.username}:${credentials.password}@${host}${rest.slice(authority.length)}`;
}

/** The decoded credentials of an `Authorization: Basic …` header; null for none or another scheme. */
export function basicCredentials(req: Request): BasicCredentials | null {
  const auth = req.headers.get('authorization') ?? '';
  const match = /^basic\s+(\S+)\s*$/i.exec(auth);
  if (!match) return null;
  const decoded = Buffer.from(match[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
