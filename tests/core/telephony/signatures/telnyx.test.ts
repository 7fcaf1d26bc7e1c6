import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  parseTelnyxPublicKey,
  signTelnyx,
  verifyTelnyxRequest,
} from '../../../../core/telephony/signatures/index.ts';

const { publicKey, privateKey } = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');

/** The portal's form: base64 of the raw 32-byte key (the tail of the DER SPKI encoding). */
const portalKey = (key: KeyObject) =>
  (key.export({ format: 'der', type: 'spki' }) as Buffer).subarray(12).toString('base64');

/** Signs the way Telnyx does: Ed25519 over `${timestamp}|${raw body}`. */
function telnyxHeaders(body: string | Uint8Array, tSec: number, key: KeyObject = privateKey) {
  const timestamp = String(tSec);
  const message = Buffer.concat([Buffer.from(`${timestamp}|`), Buffer.from(body)]);
  return { signature: sign(null, message, key).toString('base64'), timestamp };
}

const T = 1_720_000_000;
const BODY =
  '{"data":{"event_type":"call.initiated","id":"0ccc7b54","occurred_at":"2024-07-03T09:46:40.000Z",' +
  '"payload":{"call_control_id":"v2:abc","direction":"incoming","from":"+15551230000","to":"+15559870000"},' +
  '"record_type":"event"},"meta":{"attempt":1,"delivered_to":"https://example.com/telnyx"}}';
const base = { ...telnyxHeaders(BODY, T), rawBody: BODY, publicKey: portalKey(publicKey), nowSec: T };

describe('verifyTelnyxRequest', () => {
  it('accepts a webhook signed the way Telnyx signs it', () => {
    expect(verifyTelnyxRequest(base)).toEqual({ ok: true });
    expect(verifyTelnyxRequest({ ...base, rawBody: new TextEncoder().encode(BODY) })).toEqual({ ok: true });
  });

  it('accepts the key as the portal shows it, as PEM, as DER SPKI bytes, or parsed', () => {
    const forms = [
      portalKey(publicKey),
      `  ${portalKey(publicKey)}\n`,
      publicKey.export({ format: 'pem', type: 'spki' }) as string,
      publicKey.export({ format: 'der', type: 'spki' }) as Buffer,
      new Uint8Array(Buffer.from(portalKey(publicKey), 'base64')),
      publicKey,
      parseTelnyxPublicKey(portalKey(publicKey))!,
    ];
    for (const key of forms) expect(verifyTelnyxRequest({ ...base, publicKey: key })).toEqual({ ok: true });
  });

  it('signTelnyx produces the headers Telnyx would send', () => {
    const headers = signTelnyx(privateKey, BODY, T);
    expect(headers).toEqual(telnyxHeaders(BODY, T));
    expect(verifyTelnyxRequest({ ...base, ...headers })).toEqual({ ok: true });
  });

  it('round-trips any body', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 512 }), fc.string({ unit: 'grapheme' })), (rawBody) => {
        const headers = signTelnyx(privateKey, rawBody, T);
        expect(verifyTelnyxRequest({ ...base, ...headers, rawBody })).toEqual({ ok: true });
      }),
      { numRuns: 200 },
    );
  });

  it('accepts any of several keys (rotation) and rejects a key that did not sign', () => {
    expect(
      verifyTelnyxRequest({ ...base, publicKey: [portalKey(other.publicKey), portalKey(publicKey)] }),
    ).toEqual({ ok: true });
    expect(verifyTelnyxRequest({ ...base, publicKey: portalKey(other.publicKey) })).toEqual({
      ok: false,
      reason: 'mismatch',
    });
  });

  describe('tampering', () => {
    it('rejects every single-byte change to the body', () => {
      const bytes = new TextEncoder().encode(BODY);
      for (let i = 0; i < bytes.length; i += 3) {
        const tampered = bytes.slice();
        tampered[i] ^= 0x01;
        expect(verifyTelnyxRequest({ ...base, rawBody: tampered })).toEqual({
          ok: false,
          reason: 'mismatch',
        });
      }
    });

    it('rejects a re-serialised body', () => {
      const rawBody = JSON.stringify(JSON.parse(BODY), null, 2);
      expect(verifyTelnyxRequest({ ...base, rawBody })).toEqual({ ok: false, reason: 'mismatch' });
    });

    it('rejects a changed timestamp, even inside the window', () => {
      expect(verifyTelnyxRequest({ ...base, timestamp: String(T + 1) })).toEqual({
        ok: false,
        reason: 'mismatch',
      });
      expect(verifyTelnyxRequest({ ...base, timestamp: `0${T}` })).toEqual({ ok: false, reason: 'mismatch' });
    });

    it('rejects every single-character change to the signature', () => {
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
      const { signature } = base;
      for (let i = 0; i < signature.length; i++) {
        const replacement = signature[i] === '=' ? 'A' : alphabet[(alphabet.indexOf(signature[i]) + 1) % 64];
        const tampered = signature.slice(0, i) + replacement + signature.slice(i + 1);
        expect(verifyTelnyxRequest({ ...base, signature: tampered }).ok).toBe(false);
      }
    });

    it('rejects a signature over the body without the timestamp', () => {
      const signature = sign(null, Buffer.from(BODY), privateKey).toString('base64');
      expect(verifyTelnyxRequest({ ...base, signature })).toEqual({ ok: false, reason: 'mismatch' });
    });
  });

  describe('freshness', () => {
    it('accepts within 300 s either way and rejects beyond', () => {
      expect(verifyTelnyxRequest({ ...base, nowSec: T + 300 })).toEqual({ ok: true });
      expect(verifyTelnyxRequest({ ...base, nowSec: T + 301 })).toEqual({ ok: false, reason: 'expired' });
      expect(verifyTelnyxRequest({ ...base, nowSec: T - 301 })).toEqual({ ok: false, reason: 'future' });
      expect(verifyTelnyxRequest({ ...base, nowSec: T + 61, toleranceSec: 60 })).toEqual({
        ok: false,
        reason: 'expired',
      });
    });

    it('checks against the real clock by default', () => {
      const { nowSec: _ignored, ...live } = base;
      expect(verifyTelnyxRequest(live)).toEqual({ ok: false, reason: 'expired' });
      const headers = signTelnyx(privateKey, BODY, Math.floor(Date.now() / 1000));
      expect(verifyTelnyxRequest({ ...live, ...headers })).toEqual({ ok: true });
    });
  });

  describe('rejections', () => {
    it('reports missing headers', () => {
      for (const value of [undefined, null, '']) {
        expect(verifyTelnyxRequest({ ...base, signature: value })).toEqual({ ok: false, reason: 'missing' });
        expect(verifyTelnyxRequest({ ...base, timestamp: value })).toEqual({ ok: false, reason: 'missing' });
      }
    });

    it('reports malformed signatures and timestamps', () => {
      const cases = [
        { signature: base.signature.slice(4) },
        { signature: `${base.signature}AAAA` },
        { signature: base.signature.replace(/==$/, '') },
        { signature: `${base.signature.slice(0, 10)}*${base.signature.slice(11)}` },
        { timestamp: 'abc' },
        { timestamp: `${T}.5` },
        { timestamp: ` ${T}` },
        { timestamp: '-1' },
      ];
      for (const change of cases) {
        expect(verifyTelnyxRequest({ ...base, ...change })).toEqual({ ok: false, reason: 'malformed' });
      }
    });

    it('reports a configuration without a usable Ed25519 key', () => {
      const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
      const unusable = [
        '',
        'not a key',
        Buffer.alloc(31).toString('base64'),
        rsa.export({ format: 'pem', type: 'spki' }) as string,
        '-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----',
        rsa,
        new Uint8Array(0),
        [],
      ];
      for (const publicKey of unusable) {
        expect(verifyTelnyxRequest({ ...base, publicKey })).toEqual({ ok: false, reason: 'no_key' });
      }
      expect(parseTelnyxPublicKey(null as unknown as string)).toBeNull();
    });

    it('never throws and rejects random headers and bodies', () => {
      const key = parseTelnyxPublicKey(portalKey(publicKey))!;
      fc.assert(
        fc.property(
          fc.oneof(
            fc.string(),
            fc.string({ unit: 'binary' }),
            fc.base64String({ minLength: 88, maxLength: 88 }),
          ),
          fc.oneof(fc.string(), fc.integer({ min: T - 300, max: T + 300 }).map(String)),
          fc.oneof(fc.string({ unit: 'binary' }), fc.uint8Array()),
          (signature, timestamp, rawBody) => {
            expect(verifyTelnyxRequest({ signature, timestamp, rawBody, publicKey: key, nowSec: T }).ok).toBe(
              false,
            );
          },
        ),
        { numRuns: 500 },
      );
    });

    it('rejects non-string headers and bodies passed past the type system', () => {
      for (const value of [42, {}, [], Symbol('x'), true] as unknown as string[]) {
        expect(verifyTelnyxRequest({ ...base, signature: value }).ok).toBe(false);
        expect(verifyTelnyxRequest({ ...base, timestamp: value }).ok).toBe(false);
        expect(verifyTelnyxRequest({ ...base, rawBody: value }).ok).toBe(false);
      }
    });
  });
});
