import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { signJambonz, verifyJambonzRequest } from '../../../../core/telephony/signatures/index.ts';

// Vector: docs/providers.md, "Signatures", Jambonz.
const VECTOR = {
  secret: 'wh_secret',
  tSec: 1700000000,
  body: '{"call_sid":"abc","direction":"inbound"}',
  header: 't=1700000000,v1=1c27ae0a3096f02ca7e151ebb2e5fb2d85e093527549eb6144fab11bbabc3174',
};
const request = { header: VECTOR.header, rawBody: VECTOR.body, secret: VECTOR.secret, nowSec: VECTOR.tSec };
const v1Of = (header: string) =>
  header
    .split(',')
    .find((part) => part.startsWith('v1='))!
    .slice(3);
const HEX = '0123456789abcdef';

describe('signJambonz', () => {
  it('reproduces the published test vector', () => {
    expect(signJambonz(VECTOR.secret, VECTOR.body, VECTOR.tSec)).toBe(VECTOR.header);
  });

  it('signs bytes and their UTF-8 text alike, one v1 per secret', () => {
    const bytes = new TextEncoder().encode(VECTOR.body);
    expect(signJambonz(VECTOR.secret, bytes, VECTOR.tSec)).toBe(VECTOR.header);
    const both = signJambonz(['other-secret', VECTOR.secret], VECTOR.body, VECTOR.tSec);
    expect(both.split(',')).toHaveLength(3);
    expect(both.endsWith(`,v1=${v1Of(VECTOR.header)}`)).toBe(true);
  });

  it('refuses a bad time or a missing secret', () => {
    expect(() => signJambonz(VECTOR.secret, VECTOR.body, 1.5)).toThrow(RangeError);
    expect(() => signJambonz(VECTOR.secret, VECTOR.body, -1)).toThrow(RangeError);
    expect(() => signJambonz(VECTOR.secret, VECTOR.body, 10 ** 12)).toThrow(RangeError);
    expect(() => signJambonz('', VECTOR.body, VECTOR.tSec)).toThrow(RangeError);
    expect(() => signJambonz([], VECTOR.body, VECTOR.tSec)).toThrow(RangeError);
  });
});

describe('verifyJambonzRequest', () => {
  it('accepts the published test vector', () => {
    expect(verifyJambonzRequest(request)).toEqual({ ok: true });
  });

  it('round-trips any body, secret and time', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.uint8Array({ maxLength: 256 }), fc.string({ unit: 'grapheme', maxLength: 128 })),
        fc.string({ minLength: 1, maxLength: 40 }),
        fc.integer({ min: 0, max: 999_999_999_999 }),
        (rawBody, secret, tSec) => {
          const header = signJambonz(secret, rawBody, tSec);
          expect(verifyJambonzRequest({ header, rawBody, secret, nowSec: tSec })).toEqual({ ok: true });
        },
      ),
      { numRuns: 300 },
    );
  });

  describe('rotation', () => {
    it('accepts a header signed with the second of several secrets', () => {
      expect(verifyJambonzRequest({ ...request, secret: 'new-secret', secrets: [VECTOR.secret] })).toEqual({
        ok: true,
      });
      expect(
        verifyJambonzRequest({ ...request, secret: undefined, secrets: ['new', VECTOR.secret] }),
      ).toEqual({
        ok: true,
      });
    });

    it('accepts a header whose second v1 value matches', () => {
      const header = signJambonz(['old-secret', 'new-secret'], VECTOR.body, VECTOR.tSec);
      expect(verifyJambonzRequest({ ...request, header, secret: 'new-secret' })).toEqual({ ok: true });
      expect(verifyJambonzRequest({ ...request, header, secret: 'old-secret' })).toEqual({ ok: true });
      expect(verifyJambonzRequest({ ...request, header, secret: 'third-secret' })).toEqual({
        ok: false,
        reason: 'mismatch',
      });
    });

    it('ignores other schemes next to v1', () => {
      const header = `${VECTOR.header},v0=${'0'.repeat(64)}`;
      expect(verifyJambonzRequest({ ...request, header })).toEqual({ ok: true });
    });
  });

  describe('freshness', () => {
    it('accepts the edges of the default 300 s window and rejects beyond them', () => {
      expect(verifyJambonzRequest({ ...request, nowSec: VECTOR.tSec + 300 })).toEqual({ ok: true });
      expect(verifyJambonzRequest({ ...request, nowSec: VECTOR.tSec - 300 })).toEqual({ ok: true });
      expect(verifyJambonzRequest({ ...request, nowSec: VECTOR.tSec + 301 })).toEqual({
        ok: false,
        reason: 'expired',
      });
      expect(verifyJambonzRequest({ ...request, nowSec: VECTOR.tSec - 301 })).toEqual({
        ok: false,
        reason: 'future',
      });
    });

    it('uses the tolerance it is given', () => {
      expect(verifyJambonzRequest({ ...request, nowSec: VECTOR.tSec + 31, toleranceSec: 30 })).toEqual({
        ok: false,
        reason: 'expired',
      });
      expect(verifyJambonzRequest({ ...request, nowSec: VECTOR.tSec + 30, toleranceSec: 30 })).toEqual({
        ok: true,
      });
    });

    it('fails closed on a clock or tolerance that is not a number', () => {
      expect(verifyJambonzRequest({ ...request, nowSec: Number.NaN }).ok).toBe(false);
      expect(verifyJambonzRequest({ ...request, toleranceSec: Number.NaN }).ok).toBe(false);
      expect(verifyJambonzRequest({ ...request, toleranceSec: -1 }).ok).toBe(false);
    });

    it('checks against the real clock by default', () => {
      const nowSec = Math.floor(Date.now() / 1000);
      const fresh = signJambonz(VECTOR.secret, VECTOR.body, nowSec);
      expect(verifyJambonzRequest({ header: fresh, rawBody: VECTOR.body, secret: VECTOR.secret })).toEqual({
        ok: true,
      });
      expect(
        verifyJambonzRequest({ header: VECTOR.header, rawBody: VECTOR.body, secret: VECTOR.secret }),
      ).toEqual({
        ok: false,
        reason: 'expired',
      });
    });
  });

  describe('raw bytes', () => {
    it('rejects a re-serialised body that differs only in whitespace or key order', () => {
      const spaced = JSON.stringify(JSON.parse(VECTOR.body), null, 2);
      const reordered = JSON.stringify({ direction: 'inbound', call_sid: 'abc' });
      for (const rawBody of [spaced, reordered, `${VECTOR.body}\n`, ` ${VECTOR.body}`]) {
        expect(verifyJambonzRequest({ ...request, rawBody })).toEqual({ ok: false, reason: 'mismatch' });
      }
    });

    it('verifies the exact bytes a body with whitespace arrived as', () => {
      const rawBody = new TextEncoder().encode('{ "call_sid": "abc",\n  "direction": "inbound" }');
      const header = signJambonz(VECTOR.secret, rawBody, VECTOR.tSec);
      expect(verifyJambonzRequest({ ...request, header, rawBody })).toEqual({ ok: true });
      expect(verifyJambonzRequest({ ...request, header, rawBody: VECTOR.body })).toEqual({
        ok: false,
        reason: 'mismatch',
      });
    });

    it('rejects every single-bit change to the body', () => {
      const bytes = new TextEncoder().encode(VECTOR.body);
      for (let i = 0; i < bytes.length; i++) {
        const tampered = bytes.slice();
        tampered[i] ^= 0x20;
        expect(verifyJambonzRequest({ ...request, rawBody: tampered })).toEqual({
          ok: false,
          reason: 'mismatch',
        });
      }
    });
  });

  describe('tampering', () => {
    it('rejects every single-character change to the v1 value', () => {
      const v1 = v1Of(VECTOR.header);
      for (let i = 0; i < v1.length; i++) {
        const replacement = HEX[(HEX.indexOf(v1[i]) + 1) % HEX.length];
        const header = `t=${VECTOR.tSec},v1=${v1.slice(0, i)}${replacement}${v1.slice(i + 1)}`;
        expect(verifyJambonzRequest({ ...request, header })).toEqual({ ok: false, reason: 'mismatch' });
      }
    });

    it('rejects a changed timestamp, even inside the window', () => {
      const header = VECTOR.header.replace('t=1700000000', 't=1700000001');
      expect(verifyJambonzRequest({ ...request, header })).toEqual({ ok: false, reason: 'mismatch' });
    });
  });

  describe('malformed headers', () => {
    const v1 = v1Of(VECTOR.header);
    const cases = [
      'garbage',
      't=1700000000',
      `v1=${v1}`,
      `t=,v1=${v1}`,
      `t=abc,v1=${v1}`,
      `t=-1700000000,v1=${v1}`,
      `t=1.7e9,v1=${v1}`,
      `t=1700000000,t=1700000000,v1=${v1}`,
      `t=1700000000,v1=${v1.slice(1)}`,
      `t=1700000000,v1=${v1}00`,
      `t=1700000000,v1=${v1.replace(/^../, 'zz')}`,
      `t=1700000000,v1=`,
      `t=1700000000,,v1=${v1}`,
      `t=1700000000;v1=${v1}`,
      `t=1000000000000,v1=${v1}`,
    ];

    it.each(cases)('rejects %s', (header) => {
      expect(verifyJambonzRequest({ ...request, header })).toEqual({ ok: false, reason: 'malformed' });
    });

    it('rejects an oversized header without parsing it', () => {
      const header = `${VECTOR.header}${',v1=0'.repeat(1000)}`;
      expect(verifyJambonzRequest({ ...request, header })).toEqual({ ok: false, reason: 'malformed' });
    });

    it('reports a missing header and a missing secret', () => {
      for (const header of [undefined, null, '']) {
        expect(verifyJambonzRequest({ ...request, header })).toEqual({ ok: false, reason: 'missing' });
      }
      expect(verifyJambonzRequest({ ...request, secret: '' })).toEqual({ ok: false, reason: 'no_key' });
      expect(verifyJambonzRequest({ ...request, secret: undefined, secrets: [] })).toEqual({
        ok: false,
        reason: 'no_key',
      });
    });

    it('never throws and rejects random headers and bodies', () => {
      const structured = fc
        .tuple(fc.integer({ min: -1, max: 2 ** 41 }), fc.array(fc.stringMatching(/^[0-9a-f]{0,66}$/)))
        .map(([t, values]) => [`t=${t}`, ...values.map((v) => `v1=${v}`)].join(','));
      fc.assert(
        fc.property(
          fc.oneof(fc.string(), fc.string({ unit: 'binary' }), structured),
          fc.oneof(fc.string({ unit: 'binary' }), fc.uint8Array()),
          fc.integer({ min: 0, max: 2 ** 41 }),
          (header, rawBody, nowSec) => {
            expect(verifyJambonzRequest({ header, rawBody, secret: VECTOR.secret, nowSec }).ok).toBe(false);
          },
        ),
        { numRuns: 1000 },
      );
    });

    it('rejects non-string headers and bodies passed past the type system', () => {
      for (const value of [42, {}, [], Symbol('x'), true] as unknown as string[]) {
        expect(verifyJambonzRequest({ ...request, header: value }).ok).toBe(false);
        expect(verifyJambonzRequest({ ...request, rawBody: value }).ok).toBe(false);
      }
    });
  });
});
