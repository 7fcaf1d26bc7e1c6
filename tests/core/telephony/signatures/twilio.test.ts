import { createHash } from 'node:crypto';
import fc from 'fast-check';
import twilio from 'twilio';
import { describe, expect, it } from 'vitest';
import { computeTwilioSignature, verifyTwilioRequest } from '../../../../core/telephony/signatures/index.ts';

// Published vector: docs/providers.md, "Signatures", Twilio (from Twilio's "Webhooks security" page).
const VECTOR = {
  url: 'https://mycompany.com/myapp.php?foo=1&bar=2',
  authToken: '12345',
  params: {
    CallSid: 'CA1234567890ABCDE',
    Caller: '+12349013030',
    Digits: '1234',
    From: '+12349013030',
    To: '+18005551212',
  } as Record<string, string>,
  signature: '0/KCTR6DLpKmkAf8muzZqo1nDgQ=',
};

const sha256Hex = (body: string | Uint8Array) => createHash('sha256').update(body).digest('hex');
/** The same string with the character at `i` replaced by a different one. */
const alterAt = (text: string, i: number) =>
  text.slice(0, i) + (text[i] === 'a' ? 'b' : 'a') + text.slice(i + 1);

const BASE64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

const urlArb = fc
  .record({
    scheme: fc.constantFrom('https', 'http'),
    host: fc.constantFrom('example.com', 'voice.sipai.dev', '10.0.0.7', '[::1]', 'user:pw@hooks.example.org'),
    port: fc.constantFrom('', ':443', ':80', ':8443'),
    path: fc.array(fc.stringMatching(/^[A-Za-z0-9._~-]{1,8}$/), { maxLength: 3 }),
    query: fc.option(fc.stringMatching(/^[A-Za-z0-9=&%+._-]{0,20}$/), { nil: undefined }),
  })
  .map(({ scheme, host, port, path, query }) => {
    const base = `${scheme}://${host}${port}/${path.join('/')}`;
    return query === undefined ? base : `${base}?${query}`;
  });

const paramsArb = fc.dictionary(
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 10 }),
  fc.oneof(
    fc.string({ unit: 'grapheme', maxLength: 16 }),
    fc.array(fc.string({ unit: 'grapheme', maxLength: 6 }), { minLength: 1, maxLength: 4 }),
  ),
  { maxKeys: 8 },
);

const tokenArb = fc.stringMatching(/^[0-9a-f]{32}$/);

describe('computeTwilioSignature', () => {
  it('reproduces the published test vector', () => {
    expect(computeTwilioSignature(VECTOR.url, VECTOR.params, VECTOR.authToken)).toBe(VECTOR.signature);
  });

  it('agrees with twilio.getExpectedTwilioSignature on random form posts', () => {
    fc.assert(
      fc.property(urlArb, paramsArb, tokenArb, (url, params, token) => {
        expect(computeTwilioSignature(url, params, token)).toBe(
          twilio.getExpectedTwilioSignature(token, url, params),
        );
      }),
      { numRuns: 300 },
    );
  });

  it('signs a URLSearchParams body like the equivalent record', () => {
    const form = new URLSearchParams('To=%2B1800&Digits=1&Digits=0&Digits=1&Body=hi+there');
    const record = { To: '+1800', Digits: ['1', '0', '1'], Body: 'hi there' };
    expect(computeTwilioSignature(VECTOR.url, form, VECTOR.authToken)).toBe(
      twilio.getExpectedTwilioSignature(VECTOR.authToken, VECTOR.url, record),
    );
  });

  it('refuses a non-string parameter value', () => {
    const bad = { Digits: 5 } as unknown as Record<string, string>;
    expect(() => computeTwilioSignature(VECTOR.url, bad, VECTOR.authToken)).toThrow(TypeError);
  });
});

describe('verifyTwilioRequest: form posts', () => {
  const vectorRequest = {
    url: VECTOR.url,
    signature: VECTOR.signature,
    authToken: VECTOR.authToken,
    params: VECTOR.params,
  };

  it('accepts the published test vector', () => {
    expect(verifyTwilioRequest(vectorRequest)).toEqual({ ok: true });
  });

  it('accepts signatures twilio-node produces, and twilio-node accepts ours', () => {
    fc.assert(
      fc.property(urlArb, paramsArb, tokenArb, (url, params, token) => {
        const theirs = twilio.getExpectedTwilioSignature(token, url, params);
        expect(verifyTwilioRequest({ url, signature: theirs, authToken: token, params })).toEqual({
          ok: true,
        });
        const ours = computeTwilioSignature(url, params, token);
        expect(twilio.validateRequest(token, ours, url, params)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('rejects a changed parameter name, value, an added or a removed parameter', () => {
    const variants: Record<string, string>[] = [];
    for (const [name, value] of Object.entries(VECTOR.params)) {
      const { [name]: _removed, ...rest } = VECTOR.params;
      variants.push(rest);
      variants.push({ ...rest, [`${name}x`]: value });
      variants.push({ ...VECTOR.params, [name]: `${value} ` });
      for (let i = 0; i < value.length; i++) variants.push({ ...VECTOR.params, [name]: alterAt(value, i) });
    }
    variants.push({ ...VECTOR.params, Extra: '' });
    for (const params of variants) {
      expect(verifyTwilioRequest({ ...vectorRequest, params })).toEqual({ ok: false, reason: 'mismatch' });
      expect(twilio.validateRequest(VECTOR.authToken, VECTOR.signature, VECTOR.url, params)).toBe(false);
    }
  });

  it('rejects every single-character change to the URL', () => {
    for (let i = 0; i < VECTOR.url.length; i++) {
      const url = alterAt(VECTOR.url, i);
      expect(verifyTwilioRequest({ ...vectorRequest, url })).toEqual({ ok: false, reason: 'mismatch' });
    }
  });

  it('rejects every single-character change to the signature', () => {
    for (let i = 0; i < VECTOR.signature.length; i++) {
      for (const replacement of [...BASE64_ALPHABET, '=', '-', '_']) {
        if (replacement === VECTOR.signature[i]) continue;
        const signature = VECTOR.signature.slice(0, i) + replacement + VECTOR.signature.slice(i + 1);
        const result = verifyTwilioRequest({ ...vectorRequest, signature });
        expect(result.ok).toBe(false);
      }
    }
  });

  it('rejects the right signature under another auth token', () => {
    expect(verifyTwilioRequest({ ...vectorRequest, authToken: '54321' })).toEqual({
      ok: false,
      reason: 'mismatch',
    });
  });

  it('accepts the URL with or without the default port, whichever Twilio signed', () => {
    const pairs = [
      ['https://mycompany.com/myapp.php?foo=1', 'https://mycompany.com:443/myapp.php?foo=1'],
      ['http://mycompany.com/myapp.php', 'http://mycompany.com:80/myapp.php'],
      ['https://u:p@[2001:db8::1]/hook', 'https://u:p@[2001:db8::1]:443/hook'],
    ];
    for (const [withoutPort, withPort] of pairs) {
      for (const [signedUrl, receivedUrl] of [
        [withoutPort, withPort],
        [withPort, withoutPort],
      ]) {
        const signature = twilio.getExpectedTwilioSignature(VECTOR.authToken, signedUrl, VECTOR.params);
        expect(verifyTwilioRequest({ ...vectorRequest, url: receivedUrl, signature })).toEqual({ ok: true });
        const ours = computeTwilioSignature(signedUrl, VECTOR.params, VECTOR.authToken);
        expect(twilio.validateRequest(VECTOR.authToken, ours, receivedUrl, VECTOR.params)).toBe(true);
      }
    }
  });

  it('does not treat a non-default port, or the other scheme default, as optional', () => {
    const cases = [
      ['https://mycompany.com/hook', 'https://mycompany.com:8443/hook'],
      ['https://mycompany.com/hook', 'https://mycompany.com:80/hook'],
      ['http://mycompany.com/hook', 'http://mycompany.com:443/hook'],
    ];
    for (const [signedUrl, receivedUrl] of cases) {
      const signature = computeTwilioSignature(signedUrl, VECTOR.params, VECTOR.authToken);
      expect(verifyTwilioRequest({ ...vectorRequest, url: receivedUrl, signature })).toEqual({
        ok: false,
        reason: 'mismatch',
      });
    }
  });

  it('accepts any of several auth tokens (rotation)', () => {
    const signature = computeTwilioSignature(VECTOR.url, VECTOR.params, 'old-token');
    const base = { url: VECTOR.url, signature, params: VECTOR.params };
    expect(verifyTwilioRequest({ ...base, authTokens: ['new-token', 'old-token'] })).toEqual({ ok: true });
    expect(verifyTwilioRequest({ ...base, authToken: 'new-token', authTokens: ['old-token'] })).toEqual({
      ok: true,
    });
    expect(verifyTwilioRequest({ ...base, authTokens: ['new-token', 'other'] })).toEqual({
      ok: false,
      reason: 'mismatch',
    });
  });

  it('accepts URLSearchParams with repeated names', () => {
    const form = new URLSearchParams('Digits=2&Digits=1&From=%2B1555');
    const signature = twilio.getExpectedTwilioSignature(VECTOR.authToken, VECTOR.url, {
      Digits: ['1', '2'],
      From: '+1555',
    });
    expect(verifyTwilioRequest({ ...vectorRequest, params: form, signature })).toEqual({ ok: true });
  });

  it('names why it rejects: missing, malformed, no key', () => {
    expect(verifyTwilioRequest({ ...vectorRequest, signature: undefined })).toEqual({
      ok: false,
      reason: 'missing',
    });
    expect(verifyTwilioRequest({ ...vectorRequest, signature: '' })).toEqual({
      ok: false,
      reason: 'missing',
    });
    expect(verifyTwilioRequest({ ...vectorRequest, signature: `${VECTOR.signature} ` })).toEqual({
      ok: false,
      reason: 'malformed',
    });
    expect(verifyTwilioRequest({ ...vectorRequest, authToken: '' })).toEqual({ ok: false, reason: 'no_key' });
    expect(verifyTwilioRequest({ ...vectorRequest, authToken: undefined, authTokens: [] })).toEqual({
      ok: false,
      reason: 'no_key',
    });
    const nonString = { ...VECTOR.params, Digits: { toString: () => '1234' } } as unknown as Record<
      string,
      string
    >;
    expect(verifyTwilioRequest({ ...vectorRequest, params: nonString })).toEqual({
      ok: false,
      reason: 'malformed',
    });
  });
});

describe('verifyTwilioRequest: JSON bodies', () => {
  const token = 'json-body-token';
  const body = '{"CallSid":"CA1234567890ABCDE","Caller":"+12349013030","Status":"ringing"}';
  const url = `https://mycompany.com/status?foo=1&bodySHA256=${sha256Hex(body)}`;
  const signature = twilio.getExpectedTwilioSignature(token, url, {});

  it('accepts what twilio-node signs, as a string or as bytes, and twilio-node accepts ours', () => {
    expect(verifyTwilioRequest({ url, signature, authToken: token, rawBody: body })).toEqual({ ok: true });
    const bytes = new TextEncoder().encode(body);
    expect(verifyTwilioRequest({ url, signature, authToken: token, rawBody: bytes })).toEqual({ ok: true });
    const ours = computeTwilioSignature(url, undefined, token);
    expect(twilio.validateRequestWithBody(token, ours, url, body)).toBe(true);
  });

  it('agrees with twilio-node on random bodies', () => {
    fc.assert(
      fc.property(fc.json(), urlArb, tokenArb, (json, base, key) => {
        const hashed = `${base}${base.includes('?') ? '&' : '?'}bodySHA256=${sha256Hex(json)}`;
        const theirs = twilio.getExpectedTwilioSignature(key, hashed, {});
        expect(
          verifyTwilioRequest({ url: hashed, signature: theirs, authToken: key, rawBody: json }),
        ).toEqual({
          ok: true,
        });
        expect(
          twilio.validateRequestWithBody(key, computeTwilioSignature(hashed, undefined, key), hashed, json),
        ).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('rejects every single-byte change to the body', () => {
    const bytes = new TextEncoder().encode(body);
    for (let i = 0; i < bytes.length; i++) {
      const tampered = bytes.slice();
      tampered[i] ^= 0x01;
      expect(verifyTwilioRequest({ url, signature, authToken: token, rawBody: tampered })).toEqual({
        ok: false,
        reason: 'body_hash_mismatch',
      });
    }
  });

  it('rejects a body that only differs in whitespace (the hash is over the raw bytes)', () => {
    const reserialised = JSON.stringify(JSON.parse(body), null, 1);
    expect(verifyTwilioRequest({ url, signature, authToken: token, rawBody: reserialised })).toEqual({
      ok: false,
      reason: 'body_hash_mismatch',
    });
  });

  it('rejects a URL whose body hash was swapped for the tampered body', () => {
    const tampered = body.replace('ringing', 'answered');
    const swapped = url.replace(sha256Hex(body), sha256Hex(tampered));
    expect(verifyTwilioRequest({ url: swapped, signature, authToken: token, rawBody: tampered })).toEqual({
      ok: false,
      reason: 'mismatch',
    });
  });

  it('needs exactly one bodySHA256 in the URL', () => {
    const bare = 'https://mycompany.com/status';
    const bareSignature = computeTwilioSignature(bare, undefined, token);
    expect(
      verifyTwilioRequest({ url: bare, signature: bareSignature, authToken: token, rawBody: body }),
    ).toEqual({
      ok: false,
      reason: 'body_hash_missing',
    });
    const twice = `${url}&bodySHA256=${sha256Hex(body)}`;
    const twiceSignature = computeTwilioSignature(twice, undefined, token);
    expect(
      verifyTwilioRequest({ url: twice, signature: twiceSignature, authToken: token, rawBody: body }),
    ).toEqual({ ok: false, reason: 'malformed' });
  });
});

describe('verifyTwilioRequest: hostile input', () => {
  it('never throws and rejects random signatures, URLs and params', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string({ unit: 'binary' }),
          fc.base64String({ minLength: 28, maxLength: 28 }),
        ),
        fc.string({ unit: 'binary' }),
        fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.array(fc.string()), fc.anything())),
        fc.option(fc.oneof(fc.string({ unit: 'binary' }), fc.uint8Array()), { nil: undefined }),
        (signature, url, params, rawBody) => {
          const result = verifyTwilioRequest({
            url,
            signature,
            authToken: VECTOR.authToken,
            params: params as Record<string, string>,
            rawBody,
          });
          expect(result.ok).toBe(false);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('rejects non-string headers and URLs passed past the type system', () => {
    const hostile = [null, 42, {}, [], Symbol('x'), () => 'x'] as unknown as string[];
    for (const value of hostile) {
      expect(verifyTwilioRequest({ url: value, signature: VECTOR.signature, authToken: '12345' }).ok).toBe(
        false,
      );
      expect(verifyTwilioRequest({ url: VECTOR.url, signature: value, authToken: '12345' }).ok).toBe(false);
      const params = value as unknown as Record<string, string>;
      expect(
        verifyTwilioRequest({ url: VECTOR.url, signature: VECTOR.signature, authToken: '12345', params }).ok,
      ).toBe(false);
    }
  });
});
