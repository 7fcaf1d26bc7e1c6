import { generateKeyPairSync, randomUUID } from 'node:crypto';
import pino from 'pino';
import twilio from 'twilio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Core } from '../../../core/app.ts';
import { ConfigError, parseConfig } from '../../../core/config/index.ts';
import { createLogger } from '../../../core/observability/index.ts';
import { type RunningHttpServer, startHttpServer } from '../../../core/server/index.ts';
import { keys, MemoryStore } from '../../../core/store/index.ts';
import {
  basicCredentials,
  createTransfer,
  hookAuthOf,
  withUrlCredentials,
} from '../../../core/telephony/index.ts';
import { computeTwilioSignature, signTelnyx } from '../../../core/telephony/signatures/index.ts';
import { type FakeJambonz, startFakeJambonz } from '../../support/fakes/jambonz-rest.ts';

const SECRET = 'tel-shared_secret.0123456789~';
const TWILIO_TOKEN = 'shared-secret-test-twilio-token-01';
const PUBLIC = 'https://voice.example.com';
const telnyxKeys = generateKeyPairSync('ed25519');
const telnyxPublicB64 = Buffer.from(telnyxKeys.publicKey.export({ format: 'der', type: 'spki' }))
  .subarray(-32)
  .toString('base64');

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('hook credentials', () => {
  it('puts credentials in front of the host, replacing any, and keeps the rest byte for byte', () => {
    const creds = { username: 'sipai', password: SECRET };
    expect(withUrlCredentials('https://h.example.com/telephony/twilio/voice?a=%27x%27&b', creds)).toBe(
      `https://sipai:${SECRET}@h.example.com/telephony/twilio/voice?a=%27x%27&b`,
    );
    expect(withUrlCredentials('http://old:pw@127.0.0.1:8081', creds)).toBe(
      `http://sipai:${SECRET}@127.0.0.1:8081`,
    );
    expect(withUrlCredentials('https://[::1]:8443/x', creds)).toBe(`https://sipai:${SECRET}@[::1]:8443/x`);
    expect(withUrlCredentials('https://h.example.com/x', undefined)).toBe('https://h.example.com/x');
    expect(hookAuthOf(undefined)).toBeUndefined();
    expect(hookAuthOf(SECRET)).toEqual({ username: 'sipai', password: SECRET });
  });

  it('reads Basic credentials, and nothing from other schemes', () => {
    const req = (authorization?: string) =>
      new Request('http://x/', authorization ? { headers: { authorization } } : {});
    expect(basicCredentials(req(basic('sipai', 'p:a:ss')))).toEqual({
      username: 'sipai',
      password: 'p:a:ss',
    });
    expect(basicCredentials(req(`bAsIc ${btoa(`u:${SECRET}`)}`))).toEqual({
      username: 'u',
      password: SECRET,
    });
    expect(basicCredentials(req(`Bearer ${SECRET}`))).toBeNull();
    expect(basicCredentials(req(`Basic ${btoa('no-colon')}`))).toBeNull();
    expect(basicCredentials(req())).toBeNull();
  });

  it('refuses a secret that cannot sit in a URL, naming the setting', () => {
    for (const bad of [
      'with@at-sign-0123456789',
      'with:colon-0123456789',
      'slash/0123456789abcdef',
      'short',
    ]) {
      let error: unknown;
      try {
        parseConfig({ TELEPHONY_SHARED_SECRET: bad });
      } catch (err) {
        error = err;
      }
      expect(error, bad).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toContain('TELEPHONY_SHARED_SECRET');
      expect((error as Error).message).not.toContain(bad);
    }
    expect(parseConfig({ TELEPHONY_SHARED_SECRET: SECRET }).TELEPHONY_SHARED_SECRET).toBe(SECRET);
  });
});

describe('core with TELEPHONY_SHARED_SECRET: Twilio URLs with credentials, Telnyx by signature', () => {
  const store = new MemoryStore();
  let core: Core;
  let http: RunningHttpServer;

  beforeAll(async () => {
    const config = parseConfig({
      PORT: '0',
      PUBLIC_BASE_URL: PUBLIC,
      REALTIME_WS_SECRET: 'shared-secret-test-ws-secret-0123',
      TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
      TELNYX_PUBLIC_KEY: telnyxPublicB64,
      TELEPHONY_SHARED_SECRET: SECRET,
    });
    const log = createLogger({ level: 'silent', service: 'test' });
    core = new Core({ config, store, log });
    http = startHttpServer({ port: 0, hostname: '127.0.0.1', plane: core, log });
    await store.set(
      keys.numberRoute('+15005550006'),
      JSON.stringify({ agentId: 'echo', accountId: 'acc_1' }),
    );
  });
  afterAll(async () => {
    await core.drain(0);
    await http.stop(0);
    await store.close();
  });

  const twilioVoice = (signature: string, headers: Record<string, string>, params: Record<string, string>) =>
    fetch(`${http.url}/telephony/twilio/voice`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-twilio-signature': signature,
        ...headers,
      },
      body: new URLSearchParams(params).toString(),
    });
  const inbound = () => ({
    CallSid: `CA${randomUUID().replaceAll('-', '')}`,
    From: '+14155550100',
    To: '+15005550006',
    CallStatus: 'ringing',
  });

  it('verifies a signature made by twilio-node over the URL with its credentials', async () => {
    const params = inbound();
    const configured = `https://sipai:${SECRET}@voice.example.com/telephony/twilio/voice`;
    const signature = twilio.getExpectedTwilioSignature(TWILIO_TOKEN, configured, params);
    const res = await twilioVoice(signature, { authorization: basic('sipai', SECRET) }, params);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('<Connect><Stream');
    // The same request without the Basic auth is the first try Twilio makes: challenged.
    const challenged = await twilioVoice(signature, {}, inbound());
    expect(challenged.status).toBe(401);
    expect(challenged.headers.get('www-authenticate')).toMatch(/^Basic /);
  });

  it('verifies a signature over the URL without credentials, and with the default port either way', async () => {
    for (const signedUrl of [
      `${PUBLIC}/telephony/twilio/voice`,
      'https://voice.example.com:443/telephony/twilio/voice',
      `https://sipai:${SECRET}@voice.example.com:443/telephony/twilio/voice`,
    ]) {
      const params = inbound();
      const res = await twilioVoice(
        computeTwilioSignature(signedUrl, params, TWILIO_TOKEN),
        { authorization: basic('sipai', SECRET) },
        params,
      );
      expect(res.status, signedUrl).toBe(200);
    }
  });

  it('does not take credentials other than the ones the request carried into the signed URL', async () => {
    const params = inbound();
    const signature = computeTwilioSignature(
      `https://sipai:${SECRET}@voice.example.com/telephony/twilio/voice`,
      params,
      TWILIO_TOKEN,
    );
    // The secret as a header: no Basic credentials, so only credential-free URLs are candidates.
    expect((await twilioVoice(signature, { 'x-telephony-secret': SECRET }, params)).status).toBe(403);
    // Another user name in Basic auth than the one signed: the signature does not verify.
    expect((await twilioVoice(signature, { authorization: basic('other', SECRET) }, params)).status).toBe(
      403,
    );
    // The right credentials, a signature with the wrong token.
    const forged = twilio.getExpectedTwilioSignature(
      'not-the-auth-token-0123456789',
      `https://sipai:${SECRET}@voice.example.com/telephony/twilio/voice`,
      params,
    );
    expect((await twilioVoice(forged, { authorization: basic('sipai', SECRET) }, params)).status).toBe(403);
  });

  const telnyxStatus = (signed: boolean, headers: Record<string, string> = {}) => {
    const body = new URLSearchParams({ CallSid: `v3:${randomUUID()}`, CallStatus: 'completed' }).toString();
    const { signature, timestamp } = signTelnyx(telnyxKeys.privateKey, body, Math.floor(Date.now() / 1000));
    return fetch(`${http.url}/telephony/telnyx/status`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...(signed ? { 'telnyx-signature-ed25519': signature, 'telnyx-timestamp': timestamp } : {}),
        ...headers,
      },
      body,
    });
  };

  it('admits Telnyx webhooks on their Ed25519 signature without the secret, never unsigned', async () => {
    expect((await telnyxStatus(true)).status).toBe(204);
    expect((await telnyxStatus(false)).status).toBe(403);
    expect((await telnyxStatus(false, { 'x-telephony-secret': SECRET })).status).toBe(403);
    expect((await telnyxStatus(true, { 'x-telephony-secret': SECRET })).status).toBe(204);
  });

  it('still wants the secret on Twilio and Jambonz routes and the capacity report', async () => {
    for (const path of ['/telephony/twilio/status', '/telephony/jambonz/call', '/telephony/jambonz/status']) {
      const res = await fetch(`${http.url}${path}`, { method: 'POST', body: '' });
      expect(res.status, path).toBe(401);
    }
    expect((await fetch(`${http.url}/telephony/capacity`)).status).toBe(401);
  });
});

describe('Telnyx with signatures off (development): the secret is what is left, so it is required', () => {
  let core: Core;
  let http: RunningHttpServer;

  beforeAll(() => {
    const config = parseConfig({
      PORT: '0',
      REALTIME_WS_SECRET: 'shared-secret-test-ws-secret-0123',
      TELEPHONY_VERIFY_SIGNATURES: 'false',
      TELEPHONY_SHARED_SECRET: SECRET,
    });
    const log = createLogger({ level: 'silent', service: 'test' });
    core = new Core({ config, store: new MemoryStore(), log });
    http = startHttpServer({ port: 0, hostname: '127.0.0.1', plane: core, log });
  });
  afterAll(async () => {
    await core.drain(0);
    await http.stop(0);
  });

  it('refuses a Telnyx webhook without it (401) and takes one with it', async () => {
    const post = (headers: Record<string, string>) =>
      fetch(`${http.url}/telephony/telnyx/status`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams({ CallSid: `v3:${randomUUID()}`, CallStatus: 'completed' }).toString(),
      });
    expect((await post({})).status).toBe(401);
    expect((await post({ authorization: basic('telnyx', SECRET) })).status).toBe(204);
  });
});

describe('Jambonz transfer with TELEPHONY_SHARED_SECRET', () => {
  let jambonz: FakeJambonz;
  beforeAll(() => {
    jambonz = startFakeJambonz();
  });
  afterAll(() => jambonz.stop());

  it('names the transfer hook with the secret as its Basic auth', async () => {
    const callSid = randomUUID();
    jambonz.calls.set(callSid, { sid: callSid, status: 'trying', request: {}, updates: [] });
    const transfer = createTransfer(
      {
        TWILIO_ACCOUNT_SID: undefined,
        TWILIO_AUTH_TOKEN: undefined,
        TWILIO_API_BASE_URL: undefined,
        JAMBONZ_ACCOUNT_SID: jambonz.accountSid,
        JAMBONZ_API_KEY: jambonz.apiKey,
        JAMBONZ_API_BASE_URL: jambonz.url,
        TELNYX_API_KEY: undefined,
        TELNYX_API_BASE_URL: undefined,
        TELEPHONY_SHARED_SECRET: SECRET,
      },
      pino({ level: 'silent' }),
      PUBLIC,
      'shared-secret-test-ws-secret-0123',
    );
    const before = jambonz.requests.length;
    await transfer(
      {
        callId: randomUUID(),
        agentId: 'agent-1',
        protocol: 'jambonz',
        call: { params: {} },
        providerCallId: callSid,
      },
      '+14155550199',
    );
    const sent = jambonz.requests.slice(before);
    expect(sent).toHaveLength(1);
    const hook = (sent[0]!.body as { call_hook: Record<string, string> }).call_hook;
    expect(hook).toMatchObject({ method: 'POST', username: 'sipai', password: SECRET });
    expect(hook.url.startsWith(`${PUBLIC}/telephony/jambonz/transfer?token=`)).toBe(true);
  });
});
