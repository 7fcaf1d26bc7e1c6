import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CLOCK_SKEW_SEC,
  MAX_TOKEN_TTL_SEC,
  type MintClaims,
  mintToken,
  verifyToken,
} from '../../../core/auth/index.ts';

const SECRET = 'stream-secret-0123456789abcdef';
const NOW = 1_720_000_000;
const streamClaims: MintClaims = { kind: 'stream', sub: 'call-42', agentId: 'agent-7', campaignId: 'c-1' };
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Builds a token by the documented format, to check the verifier against claims mint refuses. */
function forge(secret: string, claims: unknown): string {
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const signature = createHmac('sha256', secret).update(`v1.${payload}`).digest('base64url');
  return `v1.${payload}.${signature}`;
}

describe('mintToken / verifyToken', () => {
  it('round-trips the claims, adding iat, exp and a jti', () => {
    const token = mintToken(SECRET, streamClaims, 60, NOW);
    const result = verifyToken(SECRET, token, { kind: 'stream', callId: 'call-42', nowSec: NOW });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const { jti, ...rest } = result.claims;
    expect(rest).toEqual({ ...streamClaims, iat: NOW, exp: NOW + 60 });
    expect(jti).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('keeps a jti the minter chose and gives every other token its own', () => {
    const chosen = mintToken(SECRET, { ...streamClaims, jti: 'fixed' }, 60, NOW);
    const result = verifyToken(SECRET, chosen, { kind: 'stream', nowSec: NOW });
    expect(result.ok && result.claims.jti).toBe('fixed');
    const jtis = new Set(
      Array.from({ length: 20 }, () => {
        const r = verifyToken(SECRET, mintToken(SECRET, streamClaims, 60, NOW), {
          kind: 'stream',
          nowSec: NOW,
        });
        return r.ok ? r.claims.jti : undefined;
      }),
    );
    expect(jtis.size).toBe(20);
  });

  it('produces the documented URL-safe v1 format', () => {
    const token = mintToken(SECRET, streamClaims, 60, NOW);
    expect(token).toMatch(/^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
    expect(forge(SECRET, claims)).toBe(token);
    expect(encodeURIComponent(token)).toBe(token);
  });

  it('mints realtime tokens without a call id', () => {
    const token = mintToken(SECRET, { kind: 'realtime', agentId: 'agent-7' }, 120, NOW);
    const result = verifyToken(SECRET, token, { kind: 'realtime', nowSec: NOW + 119 });
    expect(result.ok && result.claims.sub).toBeUndefined();
    expect(verifyToken(SECRET, token, { kind: 'realtime', callId: 'call-1', nowSec: NOW })).toEqual({
      ok: false,
      reason: 'wrong_call',
    });
  });

  it('round-trips random claims', () => {
    const extraKey = fc.string({ minLength: 1, maxLength: 8 }).filter((k) => !['iat', 'exp'].includes(k));
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }),
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }),
        fc.dictionary(extraKey, fc.string({ unit: 'grapheme', maxLength: 20 }), { maxKeys: 4 }),
        fc.integer({ min: 1, max: MAX_TOKEN_TTL_SEC }),
        (sub, agentId, extra, ttlSec) => {
          const claims = { ...extra, kind: 'stream', sub, agentId } as MintClaims;
          const result = verifyToken(SECRET, mintToken(SECRET, claims, ttlSec, NOW), {
            kind: 'stream',
            callId: sub,
            nowSec: NOW + ttlSec - 1,
          });
          expect(result.ok && result.claims.agentId).toBe(agentId);
        },
      ),
      { numRuns: 200 },
    );
  });

  describe('rejections', () => {
    const token = mintToken(SECRET, streamClaims, 60, NOW);
    const options = { kind: 'stream' as const, callId: 'call-42', nowSec: NOW };

    it('rejects every single-character change', () => {
      for (let i = 0; i < token.length; i++) {
        for (const replacement of [...BASE64URL, '.', '=', '+']) {
          if (replacement === token[i]) continue;
          const tampered = token.slice(0, i) + replacement + token.slice(i + 1);
          expect(verifyToken(SECRET, tampered, options).ok).toBe(false);
        }
      }
    });

    it('rejects a truncated or extended token', () => {
      for (let cut = 0; cut < token.length; cut++) {
        expect(verifyToken(SECRET, token.slice(0, cut), options).ok).toBe(false);
      }
      for (const suffix of ['A', '.', '=', '.v1'])
        expect(verifyToken(SECRET, token + suffix, options).ok).toBe(false);
    });

    it('rejects a token past its expiry', () => {
      expect(verifyToken(SECRET, token, { ...options, nowSec: NOW + 59 }).ok).toBe(true);
      expect(verifyToken(SECRET, token, { ...options, nowSec: NOW + 60 })).toEqual({
        ok: false,
        reason: 'expired',
      });
      expect(verifyToken(SECRET, token, { ...options, nowSec: Number.NaN })).toEqual({
        ok: false,
        reason: 'expired',
      });
    });

    it('rejects a token issued ahead of our clock by more than the allowed skew', () => {
      expect(verifyToken(SECRET, token, { ...options, nowSec: NOW - CLOCK_SKEW_SEC }).ok).toBe(true);
      expect(verifyToken(SECRET, token, { ...options, nowSec: NOW - CLOCK_SKEW_SEC - 1 })).toEqual({
        ok: false,
        reason: 'not_yet_valid',
      });
    });

    it('rejects the wrong kind and the wrong call', () => {
      expect(verifyToken(SECRET, token, { ...options, kind: 'realtime' })).toEqual({
        ok: false,
        reason: 'wrong_kind',
      });
      expect(verifyToken(SECRET, token, { ...options, callId: 'call-43' })).toEqual({
        ok: false,
        reason: 'wrong_call',
      });
    });

    it('rejects a token signed with another secret', () => {
      expect(verifyToken('another-secret-0123456789', token, options)).toEqual({
        ok: false,
        reason: 'mismatch',
      });
    });

    it('reports a missing token and a missing secret', () => {
      for (const missing of [undefined, null, '']) {
        expect(verifyToken(SECRET, missing, options)).toEqual({ ok: false, reason: 'missing' });
      }
      expect(verifyToken('', token, options)).toEqual({ ok: false, reason: 'no_key' });
      expect(verifyToken([], token, options)).toEqual({ ok: false, reason: 'no_key' });
    });

    it('rejects validly signed claims that mint would never produce', () => {
      const good = { kind: 'stream', sub: 'call-42', agentId: 'a', iat: NOW, exp: NOW + 60 };
      const bad: unknown[] = [
        null,
        [],
        'claims',
        { ...good, kind: 'admin' },
        { ...good, agentId: '' },
        { ...good, agentId: 7 },
        { ...good, sub: undefined },
        { ...good, sub: 42 },
        { ...good, exp: NOW + MAX_TOKEN_TTL_SEC + 1 },
        { ...good, exp: NOW },
        { ...good, exp: `${NOW + 60}` },
        { ...good, iat: 1.5 },
        { ...good, extra: { nested: true } },
        { ...good, extra: 5 },
      ];
      for (const claims of bad) {
        expect(verifyToken(SECRET, forge(SECRET, claims), options)).toEqual({
          ok: false,
          reason: 'malformed',
        });
      }
      const notJson = Buffer.from('{not json').toString('base64url');
      const mac = createHmac('sha256', SECRET).update(`v1.${notJson}`).digest('base64url');
      expect(verifyToken(SECRET, `v1.${notJson}.${mac}`, options)).toEqual({
        ok: false,
        reason: 'malformed',
      });
      expect(verifyToken(SECRET, forge(SECRET, good), options)).toEqual({ ok: true, claims: good });
    });

    it('never throws and rejects random strings', () => {
      const shaped = fc
        .tuple(fc.base64String(), fc.base64String({ minLength: 44, maxLength: 44 }))
        .map(([a, b]) => `v1.${a.replace(/\+/g, '-').replace(/\//g, '_')}.${b.replace(/=+$/, '')}`);
      fc.assert(
        fc.property(
          fc.oneof(fc.string(), fc.string({ unit: 'binary', maxLength: 5000 }), shaped),
          (candidate) => {
            expect(verifyToken(SECRET, candidate, options).ok).toBe(false);
          },
        ),
        { numRuns: 1000 },
      );
    });

    it('rejects non-string tokens passed past the type system', () => {
      for (const value of [42, {}, [], Symbol('x'), true] as unknown as string[]) {
        expect(verifyToken(SECRET, value, options).ok).toBe(false);
      }
    });
  });

  describe('rotation', () => {
    it('accepts a token signed with any of several secrets', () => {
      const oldToken = mintToken('old-secret-0123456789', streamClaims, 60, NOW);
      const options = { kind: 'stream' as const, nowSec: NOW };
      expect(verifyToken(['new-secret-0123456789', 'old-secret-0123456789'], oldToken, options).ok).toBe(
        true,
      );
      expect(verifyToken(['new-secret-0123456789'], oldToken, options)).toEqual({
        ok: false,
        reason: 'mismatch',
      });
    });
  });

  describe('minting bounds', () => {
    it(`accepts TTLs from 1 to ${MAX_TOKEN_TTL_SEC} s and refuses others`, () => {
      expect(() => mintToken(SECRET, streamClaims, 1, NOW)).not.toThrow();
      expect(() => mintToken(SECRET, streamClaims, MAX_TOKEN_TTL_SEC, NOW)).not.toThrow();
      for (const ttlSec of [0, -1, MAX_TOKEN_TTL_SEC + 1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        expect(() => mintToken(SECRET, streamClaims, ttlSec, NOW)).toThrow(RangeError);
      }
    });

    it('refuses a short secret, a stream token without a call id, and non-string claims', () => {
      expect(() => mintToken('short', streamClaims, 60, NOW)).toThrow(RangeError);
      expect(() => mintToken(SECRET, { kind: 'stream', agentId: 'a' }, 60, NOW)).toThrow(TypeError);
      expect(() => mintToken(SECRET, { kind: 'realtime', agentId: '' }, 60, NOW)).toThrow(TypeError);
      const nonString = { ...streamClaims, extra: 5 } as unknown as MintClaims;
      expect(() => mintToken(SECRET, nonString, 60, NOW)).toThrow(TypeError);
    });

    it('uses the real clock by default', () => {
      const token = mintToken(SECRET, streamClaims, 60);
      expect(verifyToken(SECRET, token, { kind: 'stream' }).ok).toBe(true);
      expect(
        verifyToken(SECRET, token, { kind: 'stream', nowSec: Math.floor(Date.now() / 1000) + 61 }),
      ).toEqual({
        ok: false,
        reason: 'expired',
      });
    });
  });
});
