import { Elysia } from 'elysia';
import { ApiError } from '../errors.ts';
import type { KeyService, Principal } from '../modules/keys/service.ts';
import { API_KEY_PATTERN, bearerToken } from './api-key.ts';
import type { FailedAuthLimiter } from './failed-auth-limiter.ts';
import type { FixedWindowRateLimiter } from './rate-limit.ts';

/** The OpenAPI security requirement of every route behind {@link requireApiKey}. */
export const bearerSecurity = [{ bearerAuth: [] as string[] }];

/**
 * Error responses every authenticated route may give, for its `response` map: 503 too, as the
 * key is looked up in Postgres and counted in the Store.
 */
export const authErrors = { 401: 'Error', 429: 'Error', 503: 'Error' } as const;

function unauthorized(message: string): ApiError {
  return new ApiError(401, 'unauthorized', message, undefined, {
    'www-authenticate': 'Bearer realm="sipai"',
  });
}

/** 401 for a request without an API key. */
export const missingApiKey = () => unauthorized('send an API key as "Authorization: Bearer sk_live_…"');

/** 401 for a key that is malformed, unknown or revoked (the three look the same). */
export const invalidApiKey = () => unauthorized('API key is invalid or revoked');

/** 429 for a client address past its budget of failed authentications. */
export function tooManyFailedAuthentications(
  limit: number,
  windowSec: number,
  retryAfterSec: number,
): ApiError {
  return new ApiError(
    429,
    'too_many_failed_authentications',
    `too many failed authentications from this address; retry in ${retryAfterSec} s`,
    { limit, windowSec, retryAfterSec },
    { 'retry-after': String(retryAfterSec) },
  );
}

/** 429 for a key past its request limit. */
export function rateLimited(limit: number, windowSec: number, retryAfterSec: number): ApiError {
  return new ApiError(
    429,
    'rate_limited',
    `this API key is over its limit of ${limit} requests per ${windowSec} s; retry in ${retryAfterSec} s`,
    { limit, windowSec, retryAfterSec },
    { 'retry-after': String(retryAfterSec) },
  );
}

/** Principals of requests {@link authenticateRequest} admitted, for the routes' `principal`. */
const admitted = new WeakMap<Request, Principal>();

/** What authenticating a request needs. */
export interface AuthDeps {
  keys: KeyService;
  limiter: FixedWindowRateLimiter;
  /** Failed authentications per client address; absent, failures are not limited. */
  failedAuth?: FailedAuthLimiter;
}

/**
 * Resolves the principal of `Authorization: Bearer <api key>` or throws 401; counts the request
 * against the key's rate limit or throws 429 with Retry-After. With `address` (the client's, see
 * client-address.ts) failed attempts are counted, and an address past its budget gets 429 before
 * its key is looked up. Runs from the request guards, before the body is read; the principal is
 * remembered for the route (see {@link requireApiKey}).
 */
export async function authenticateRequest(
  request: Request,
  deps: AuthDeps,
  address: string | null,
): Promise<Principal> {
  const { failedAuth } = deps;
  if (failedAuth && address) {
    const check = failedAuth.check(address);
    if (!check.ok) {
      throw tooManyFailedAuthentications(failedAuth.limit, failedAuth.windowMs / 1000, check.retryAfterSec);
    }
  }
  const secret = bearerToken(request.headers.get('authorization'));
  const principal = secret && API_KEY_PATTERN.test(secret) ? await deps.keys.authenticate(secret) : null;
  if (!principal) {
    if (failedAuth && address) failedAuth.fail(address);
    throw secret ? invalidApiKey() : missingApiKey();
  }
  const { limiter } = deps;
  const windowSec = limiter.windowMs / 1000;
  const limit = await limiter.take(principal.keyId);
  if (!limit.ok) throw rateLimited(limiter.limit, windowSec, limit.retryAfterSec);
  admitted.set(request, principal);
  return principal;
}

/**
 * The auth plugin feature modules `.use()`: gives routes the `principal` the request guards
 * admitted (see control/http/request-guards.ts); a module mounted without the guards
 * authenticates here instead. Scoped: it guards the routes of the module that uses it.
 */
export function requireApiKey(deps: AuthDeps) {
  return new Elysia().resolve(
    { as: 'scoped' },
    async ({ request }): Promise<{ principal: Principal }> => ({
      principal: admitted.get(request) ?? (await authenticateRequest(request, deps, null)),
    }),
  );
}

/** The auth plugin's type, for module factories' parameters. */
export type ApiKeyAuth = ReturnType<typeof requireApiKey>;

/** 403 unless the principal's key is an admin key. */
export function requireAdmin(principal: Principal): void {
  if (principal.role !== 'admin') {
    throw new ApiError(403, 'admin_key_required', 'only an admin API key may manage API keys');
  }
}
