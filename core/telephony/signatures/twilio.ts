/**
 * X-Twilio-Signature: proves a webhook came from Twilio.
 *
 * Source: Twilio docs, "Webhooks security"
 * (https://www.twilio.com/docs/usage/webhooks/webhooks-security):
 * - the signed string is the full URL Twilio requested (query included), then for a form post
 *   each parameter name in sorted order followed by its value, no separators;
 * - signature = base64(HMAC-SHA1(key = auth token, signed string));
 * - JSON bodies are not signed as parameters: the URL carries `bodySHA256=<hex sha256 of the raw
 *   body>` and the URL alone is signed.
 * Several values under one name are sorted and de-duplicated, as Twilio's helper libraries
 * (twilio-node, twilio-python) do.
 */
import { createHash, createHmac } from 'node:crypto';
import { safeEqualStrings } from '../../auth/constant-time.ts';
import { isRawBody, type RawBody, type VerifyResult } from './verify-result.ts';

/** Form fields as parsed from an `application/x-www-form-urlencoded` body. */
export type TwilioParams = Readonly<Record<string, string | readonly string[]>> | URLSearchParams;

/** Why a Twilio request was rejected. `no_key` means we were given no auth token at all. */
export type TwilioRejection =
  | 'missing'
  | 'malformed'
  | 'mismatch'
  | 'body_hash_missing'
  | 'body_hash_mismatch'
  | 'no_key';

/** One received Twilio webhook, as the route hands it over. */
export interface TwilioRequest {
  /** The full URL Twilio requested, query string included, exactly as configured with Twilio. */
  url: string;
  /** The `X-Twilio-Signature` header. */
  signature: string | null | undefined;
  /** The account auth token; give `authTokens` too (or instead) while rotating. */
  authToken?: string;
  authTokens?: readonly string[];
  /** Form fields of a form post. Ignored when `rawBody` is given. */
  params?: TwilioParams;
  /** The raw body of a JSON post, whose hash the URL carries as `bodySHA256`. */
  rawBody?: RawBody;
}

/** base64 of a 20-byte SHA-1 digest: 27 characters and one `=`. */
const SIGNATURE_SHAPE = /^[A-Za-z0-9+/]{27}=$/;
const URL_PARTS = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/?#]*)([\s\S]*)$/;
const DEFAULT_PORTS = new Map([
  ['http://', '80'],
  ['https://', '443'],
]);

/**
 * The signature Twilio sends for `url` and form `params` (none for a JSON post). Used by the
 * verifier and by fakes that play Twilio. Throws TypeError on a non-string parameter value.
 */
export function computeTwilioSignature(
  url: string,
  params: TwilioParams | undefined,
  authToken: string,
): string {
  const suffix = paramsSuffix(params);
  if (suffix === null) throw new TypeError('Twilio parameters must be strings or arrays of strings');
  return sign(url + suffix, authToken);
}

/** Checks a Twilio webhook's signature (and, for a JSON post, its body hash). Never throws. */
export function verifyTwilioRequest(request: TwilioRequest): VerifyResult<TwilioRejection> {
  const tokens = [request.authToken, ...(request.authTokens ?? [])].filter(
    (token): token is string => typeof token === 'string' && token.length > 0,
  );
  if (tokens.length === 0) return { ok: false, reason: 'no_key' };
  const { url, signature, rawBody } = request;
  if (typeof url !== 'string') return { ok: false, reason: 'malformed' };
  if (signature === undefined || signature === null || signature === '') {
    return { ok: false, reason: 'missing' };
  }
  if (typeof signature !== 'string' || !SIGNATURE_SHAPE.test(signature)) {
    return { ok: false, reason: 'malformed' };
  }

  let bodyHash: string | null = null;
  let suffix: string | null = '';
  if (rawBody !== undefined) {
    if (!isRawBody(rawBody)) return { ok: false, reason: 'malformed' };
    const hashes = queryValues(url, 'bodySHA256');
    if (hashes.length === 0) return { ok: false, reason: 'body_hash_missing' };
    if (hashes.length > 1) return { ok: false, reason: 'malformed' };
    bodyHash = hashes[0];
  } else {
    suffix = paramsSuffix(request.params);
    if (suffix === null) return { ok: false, reason: 'malformed' };
  }

  // Every candidate is computed and compared; no early exit on a match.
  let matched = false;
  for (const token of tokens) {
    for (const candidate of urlCandidates(url)) {
      matched = safeEqualStrings(sign(candidate + suffix, token), signature) || matched;
    }
  }
  if (!matched) return { ok: false, reason: 'mismatch' };
  if (rawBody !== undefined && bodyHash !== null) {
    const actual = createHash('sha256').update(rawBody).digest('hex');
    if (!safeEqualStrings(actual, bodyHash)) return { ok: false, reason: 'body_hash_mismatch' };
  }
  return { ok: true };
}

function sign(data: string, authToken: string): string {
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64');
}

/** Sorted `name + value` pairs; null when a value is not a string. */
function paramsSuffix(params: TwilioParams | undefined): string | null {
  if (params === undefined || params === null) return '';
  if (typeof params !== 'object') return null;
  const byName = new Map<string, string[]>();
  const add = (name: string, value: string) => {
    const values = byName.get(name);
    if (values) values.push(value);
    else byName.set(name, [value]);
  };
  if (params instanceof URLSearchParams) {
    for (const [name, value] of params) add(name, value);
  } else {
    for (const name of Object.keys(params)) {
      const value: unknown = params[name];
      if (typeof value === 'string') add(name, value);
      else if (Array.isArray(value) && value.every((item) => typeof item === 'string')) {
        for (const item of value) add(name, item);
      } else return null;
    }
  }
  let suffix = '';
  for (const name of [...byName.keys()].sort()) {
    for (const value of [...new Set(byName.get(name))].sort()) suffix += name + value;
  }
  return suffix;
}

/**
 * The URL as given, plus the same URL with the scheme's default port added (when it has no port)
 * or removed (when it has exactly that port): Twilio may have signed either form (docs/providers.md,
 * "Signatures", Twilio). Split by hand, not with `new URL()`, which would re-encode the path.
 */
function urlCandidates(url: string): string[] {
  const match = URL_PARTS.exec(url);
  const defaultPort = match ? DEFAULT_PORTS.get(match[1].toLowerCase()) : undefined;
  if (!match || !defaultPort) return [url];
  const [, scheme, authority, rest] = match;
  const hostStart = authority.lastIndexOf('@') + 1;
  const portStart = authority.indexOf(':', Math.max(hostStart, authority.lastIndexOf(']') + 1));
  if (portStart === -1) return [url, `${scheme}${authority}:${defaultPort}${rest}`];
  if (authority.slice(portStart + 1) === defaultPort) {
    return [url, scheme + authority.slice(0, portStart) + rest];
  }
  return [url];
}

/** All values of one query parameter of `url` (fragment excluded). */
function queryValues(url: string, name: string): string[] {
  const queryStart = url.indexOf('?');
  if (queryStart === -1) return [];
  const fragmentStart = url.indexOf('#', queryStart);
  const query = url.slice(queryStart + 1, fragmentStart === -1 ? undefined : fragmentStart);
  return new URLSearchParams(query).getAll(name);
}
