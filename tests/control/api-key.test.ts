import { describe, expect, it } from 'vitest';
import {
  API_KEY_PATTERN,
  apiKeyPrefix,
  bearerToken,
  generateApiKey,
  hashApiKey,
} from '../../control/auth/index.ts';
import { settings } from '../../core/config/index.ts';

describe('API keys', () => {
  it('generates sk_live_ keys with 256 random bits that match the accepted shape', () => {
    const keys = new Set(Array.from({ length: 200 }, generateApiKey));
    expect(keys.size).toBe(200);
    for (const key of keys) {
      expect(key).toMatch(API_KEY_PATTERN);
      expect(Buffer.from(key.slice('sk_live_'.length), 'base64url')).toHaveLength(32);
    }
  });

  it('keeps a 20-character lookup prefix and a sha256 hash, never the key', () => {
    const key = generateApiKey();
    expect(apiKeyPrefix(key)).toBe(key.slice(0, 20));
    const hash = hashApiKey(key);
    expect(hash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(hash).not.toContain(key.slice(8));
    expect(hashApiKey(key)).toBe(hash);
    expect(hashApiKey(`${key}x`)).not.toBe(hash);
  });

  it('reads the token of a Bearer header only', () => {
    expect(bearerToken('Bearer sk_live_abc')).toBe('sk_live_abc');
    expect(bearerToken('bearer   sk_live_abc ')).toBe('sk_live_abc');
    expect(bearerToken('Basic dXNlcjpwYXNz')).toBeNull();
    expect(bearerToken('Bearer a b')).toBeNull();
    expect(bearerToken('Bearer')).toBeNull();
    expect(bearerToken(undefined)).toBeNull();
  });

  it('accepts as ADMIN_API_KEY exactly the keys the API accepts', () => {
    const generated = generateApiKey();
    expect(settings.ADMIN_API_KEY.parse(generated)).toBe(generated);
    expect(() => settings.ADMIN_API_KEY.parse('sk_live_short')).toThrow(/ADMIN|sk_live_/);
    expect(() => settings.ADMIN_API_KEY.parse(`sk_test_${'a'.repeat(30)}`)).toThrow();
    expect(settings.ADMIN_API_KEY.parse(undefined)).toBeUndefined();
  });
});
