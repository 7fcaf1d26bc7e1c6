export { API_KEY_PATTERN, apiKeyPrefix, bearerToken, generateApiKey, hashApiKey } from './api-key.ts';
export { type ApiKeyAuth, authErrors, bearerSecurity, requireAdmin, requireApiKey } from './authenticate.ts';
export { FixedWindowRateLimiter, type RateLimitResult } from './rate-limit.ts';
