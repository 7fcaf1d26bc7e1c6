export { API_KEY_PATTERN, apiKeyPrefix, bearerToken, generateApiKey, hashApiKey } from './api-key.ts';
export {
  type ApiKeyAuth,
  type AuthDeps,
  authErrors,
  authenticateRequest,
  bearerSecurity,
  invalidApiKey,
  missingApiKey,
  rateLimited,
  requireAdmin,
  requireApiKey,
  tooManyFailedAuthentications,
} from './authenticate.ts';
export { type FailedAuthCheck, FailedAuthLimiter } from './failed-auth-limiter.ts';
export { FixedWindowRateLimiter, type RateLimitResult } from './rate-limit.ts';
