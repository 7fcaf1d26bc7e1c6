import { Elysia } from 'elysia';
import { ApiError } from '../errors.ts';
import type { KeyService, Principal } from '../modules/keys/service.ts';
import { API_KEY_PATTERN, bearerToken } from './api-key.ts';
import type { FixedWindowRateLimiter } from './rate-limit.ts';

/** The OpenAPI security requirement of every route behind {@link requireApiKey}. */
export const bearerSecurity = [{ bearerAuth: [] as string[] }];

/** Error responses every authenticated route may give, for its `response` map. */
export const authErrors = { 401: 'Error', 429: 'Error' } as const;

function unauthorized(message: string): ApiError {
  return new ApiError(401, 'unauthorized', message, undefined, {
    'www-authenticate': 'Bearer realm="sipai"',
  });
}

/**
 * The auth plugin feature modules `.use()`: resolves `principal` from `Authorization: Bearer
 * <api key>`, or answers 401; then counts the request against the key's rate limit, or answers
 * 429 with Retry-After. Scoped: it guards the routes of the module that uses it, nothing else.
 */
export function requireApiKey(deps: { keys: KeyService; limiter: FixedWindowRateLimiter }) {
  return new Elysia().resolve({ as: 'scoped' }, async ({ headers }): Promise<{ principal: Principal }> => {
    const secret = bearerToken(headers.authorization);
    if (!secret) throw unauthorized('send an API key as "Authorization: Bearer sk_live_…"');
    const principal = API_KEY_PATTERN.test(secret) ? await deps.keys.authenticate(secret) : null;
    if (!principal) throw unauthorized('API key is invalid or revoked');
    const { limiter } = deps;
    const windowSec = limiter.windowMs / 1000;
    const limit = await limiter.take(principal.keyId);
    if (!limit.ok) {
      throw new ApiError(
        429,
        'rate_limited',
        `this API key is over its limit of ${limiter.limit} requests per ${windowSec} s; retry in ${limit.retryAfterSec} s`,
        { limit: limiter.limit, windowSec, retryAfterSec: limit.retryAfterSec },
        { 'retry-after': String(limit.retryAfterSec) },
      );
    }
    return { principal };
  });
}

/** The auth plugin's type, for module factories' parameters. */
export type ApiKeyAuth = ReturnType<typeof requireApiKey>;

/** 403 unless the principal's key is an admin key. */
export function requireAdmin(principal: Principal): void {
  if (principal.role !== 'admin') {
    throw new ApiError(403, 'admin_key_required', 'only an admin API key may manage API keys');
  }
}
