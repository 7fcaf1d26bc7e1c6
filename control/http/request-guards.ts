import { Elysia } from 'elysia';
import { type AuthDeps, authenticateRequest } from '../auth/index.ts';
import {
  ApiError,
  invalidField,
  invalidQueryParameter,
  payloadTooLarge,
  unsupportedMediaType,
} from '../errors.ts';
import { clientAddress, peerOf } from './client-address.ts';
import { parseJsonBody, readBodyText } from './json-body.ts';
import { DEFAULT_MAX_BODY_BYTES, type RoutePolicy, type RouteTable } from './route-table.ts';

/** Headers every API response carries: nothing is cached (a new key's response holds its secret). */
export const API_RESPONSE_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
} as const;

/** C0 controls and DEL: no query parameter of the API has a use for one. */
function hasControlCharacter(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}
const JSON_TYPE = /^application\/(?:[a-z0-9.-]+\+)?json$/;

const accepted = (policy: RoutePolicy) => ['application/json', ...policy.otherContentTypes];

/** The policy the request guard found for each request, for the body parser later on. */
const policies = new WeakMap<Request, RoutePolicy>();

/**
 * The checks every `/v1` request passes before Elysia parses or validates anything, cheapest
 * first, so a request without a valid key costs a header check and one indexed lookup whatever
 * its body:
 *
 * 1. the response headers of {@link API_RESPONSE_HEADERS}; a method the path does not serve is
 *    405 with `Allow` (the paths are public, in the OpenAPI document);
 * 2. the API key (routes the route table marks public skip it), failed attempts counted per
 *    client address, then the key's rate limit;
 * 3. query parameters: none may hold a control character (NUL included), 422 naming it;
 * 4. the body: `Content-Length` within the route's limit (413), and then, as the first body
 *    parser, JSON only (415 otherwise, unless the route takes another type such as CSV), read
 *    no further than the limit, nested at most 32 deep, with no NUL in any string.
 */
export function requestGuards(deps: AuthDeps & { routes: RouteTable; prefix: string }) {
  return new Elysia({ name: 'sipai/request-guards' })
    .onRequest(async ({ request, set }) => {
      Object.assign(set.headers, API_RESPONSE_HEADERS);
      const url = new URL(request.url);
      if (url.pathname !== deps.prefix && !url.pathname.startsWith(`${deps.prefix}/`)) return;
      const matched = deps.routes.match(request.method, url.pathname);
      if (!matched) {
        // A known path asked with a method it does not serve: 405 naming the ones it does.
        const allowed = deps.routes.methodsOf(url.pathname);
        if (allowed.length > 0) {
          throw new ApiError(
            405,
            'method_not_allowed',
            `${request.method} is not served at ${url.pathname}; use ${allowed.join(', ')}`,
            { allowed },
            { allow: allowed.join(', ') },
          );
        }
      }
      const policy = matched ?? {
        route: 'unknown',
        public: false,
        maxBodyBytes: DEFAULT_MAX_BODY_BYTES,
        otherContentTypes: [],
      };
      if (policy.public) return;
      await authenticateRequest(request, deps, clientAddress(request, peerOf(request)));
      for (const [name, value] of url.searchParams) {
        if (hasControlCharacter(name)) {
          throw invalidQueryParameter('(name)', 'parameter names must not contain control characters');
        }
        if (hasControlCharacter(value)) {
          throw invalidQueryParameter(name, 'must not contain control characters (NUL included)');
        }
      }
      const length = request.headers.get('content-length');
      if (length !== null && !(Number(length) <= policy.maxBodyBytes)) {
        throw payloadTooLarge(policy.maxBodyBytes);
      }
      policies.set(request, policy);
    })
    .onParse({ as: 'global' }, async ({ request }) => {
      if (request.body === null || request.headers.get('content-length') === '0') return;
      const policy = policies.get(request);
      if (!policy) return;
      // The header itself: Elysia hands parsers the media type without its parameters.
      const contentType = request.headers.get('content-type') ?? '';
      const [mediaType = '', ...params] = contentType
        .toLowerCase()
        .split(';')
        .map((s) => s.trim());
      if (JSON_TYPE.test(mediaType)) {
        const charset = params
          .find((p) => p.startsWith('charset='))
          ?.slice(8)
          .replaceAll('"', '');
        if (charset && charset !== 'utf-8' && charset !== 'utf8')
          throw unsupportedMediaType(contentType, accepted(policy));
        return parseJsonBody(request, policy.maxBodyBytes);
      }
      if (!policy.otherContentTypes.includes(mediaType))
        throw unsupportedMediaType(mediaType, accepted(policy));
      // The route's own parser reads the body: check a copy here for size and NUL first.
      const text = await readBodyText(request.clone(), policy.maxBodyBytes);
      if (text.includes('\u0000')) throw invalidField('(body)', 'must not contain NUL characters');
    });
}
