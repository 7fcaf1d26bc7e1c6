/** Authentication primitives shared by core and control: signed tokens, constant-time checks. */
export { decodeCanonicalBase64 } from './base64.ts';
export { safeEqual, safeEqualStrings } from './constant-time.ts';
export {
  CLOCK_SKEW_SEC,
  MAX_TOKEN_TTL_SEC,
  MIN_SECRET_LENGTH,
  type MintClaims,
  mintToken,
  type TokenClaims,
  type TokenKind,
  type TokenRejection,
  type TokenResult,
  type VerifyTokenOptions,
  verifyToken,
} from './tokens.ts';
