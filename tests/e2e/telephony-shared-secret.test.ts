import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { verifyToken } from '../../core/auth/tokens.ts';
import { createForwarder, type HttpApiEvent } from '../../core/lambda.ts';
import { keys } from '../../core/store/index.ts';
import { computeTwilioSignature, signJambonz } from '../../core/telephony/signatures/index.ts';
import { JAMBONZ_SECRET, type Platform, REALTIME_SECRET, startPlatform } from '../control/platform.ts';
import { type Backing, embedded, eventually, type Json, makeAccount } from '../control/support.ts';
import { deliverTwilioWebhook, type SignedUrlForm } from '../support/fakes/twilio-callbacks.ts';
import { type FakeTwilio, startFakeTwilio } from '../support/fakes/twilio-rest.ts';

/** Letters, digits and `-._~`: what TELEPHONY_SHARED_SECRET may hold, as it rides in URLs. */
const SHARED_SECRET = 'shared_secret-e2e.0123456789~abc';
const FORWARDER_SECRET = 'shared-secret-e2e-forwarder-0123456';

/**
 * TELEPHONY_SHARED_SECRET with outbound Twilio calls: control hands Twilio URLs that carry the
 * secret as credentials, and core admits the webhooks Twilio makes for them (challenged first,
 * then Basic auth, signed over the URL with or without the credentials), through the webhook
 * Lambda too. Everything else about the call is as without the secret.
 */
describe('outbound Twilio calls with TELEPHONY_SHARED_SECRET set', () => {
  let backing: Backing;
  let twilio: FakeTwilio;
  let p: Platform;
  let key: string;
  let agent: Json;
  const placed: string[] = [];

  beforeAll(async () => {
    backing = await embedded();
    twilio = startFakeTwilio();
    p = await startPlatform(backing, {
      env: {
        TWILIO_ACCOUNT_SID: twilio.accountSid,
        TWILIO_AUTH_TOKEN: twilio.authToken,
        TWILIO_API_BASE_URL: twilio.url,
        TELEPHONY_SHARED_SECRET: SHARED_SECRET,
        TELEPHONY_FORWARDER_SECRET: FORWARDER_SECRET,
      },
      control: { workers: { recorder: { blockMs: 50 }, campaigns: false } },
    });
    ({ key } = await makeAccount(p.control, 'shared-secret'));
    const res = await p.api('POST', '/v1/agents', { key, body: { name: 'Secret desk', brain: 'echo' } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    agent = res.body;
  });

  afterEach(async () => {
    for (const session of [...p.core.media.sessions.values()]) session.close('server_shutdown');
    await Promise.all(placed.splice(0).map((id) => p.core.capacity.release(id)));
  });

  afterAll(async () => {
    await p?.close();
    twilio?.stop();
    await backing?.close();
  });

  let n = 0;
  /** Places a Twilio call through the API; returns our call, its sid, and the URLs Twilio got. */
  async function placeCall() {
    const to = `+1415555${String(3000 + n++).padStart(4, '0')}`;
    const res = await p.api('POST', '/v1/calls', {
      key,
      body: { agentId: agent.id, to, from: '+14155550100', provider: 'twilio' },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    placed.push(res.body.id);
    const form = twilio.calls.get(res.body.providerCallId)!.params;
    return {
      id: res.body.id as string,
      sid: res.body.providerCallId as string,
      to,
      voiceUrl: form.get('Url')!,
      statusUrl: form.get('StatusCallback')!,
    };
  }

  const fields = (call: { sid: string; to: string }, status: string) => ({
    AccountSid: twilio.accountSid,
    CallSid: call.sid,
    From: '+14155550100',
    To: call.to,
    Direction: 'outbound-api',
    CallStatus: status,
  });

  /** Our call's record as the API shows it, once `done` holds. */
  const waitForCall = (id: string, done: (call: Json) => boolean, what: string) =>
    eventually(
      async () => {
        const res = await p.api('GET', `/v1/calls/${id}`, { key });
        return res.status === 200 && done(res.body) ? res.body : undefined;
      },
      10_000,
      what,
    );

  it('hands Twilio a voice URL and a status callback that carry the secret as credentials', async () => {
    const call = await placeCall();
    const port = new URL(p.url).port;
    for (const [url, path] of [
      [call.voiceUrl, '/telephony/twilio/voice'],
      [call.statusUrl, '/telephony/twilio/status'],
    ] as const) {
      expect(url.startsWith(`http://sipai:${SHARED_SECRET}@127.0.0.1:${port}${path}?`), url).toBe(true);
      // Our ids still ride in the signed query.
      expect(Object.fromEntries(new URL(url).searchParams)).toEqual({ callId: call.id, agentId: agent.id });
    }
  });

  for (const form of ['as-configured', 'without-credentials'] as SignedUrlForm[]) {
    it(`admits the webhooks Twilio makes, signed over the URL ${form}: a 401 challenge, then Basic auth`, async () => {
      const call = await placeCall();
      const voice = await deliverTwilioWebhook({
        url: call.voiceUrl,
        params: fields(call, 'in-progress'),
        authToken: twilio.authToken,
        signedUrl: form,
      });
      expect(voice.attempts.map((r) => r.status)).toEqual([401, 200]);
      expect(voice.attempts[0]!.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
      const token = /<Parameter name="token" value="([^"]+)"\/>/.exec(voice.body)?.[1];
      expect(voice.body).toContain('<Connect><Stream url=');
      // Admitted as our call, with the agent control placed it for.
      expect(verifyToken(REALTIME_SECRET, token ?? '', { kind: 'stream', callId: call.id })).toMatchObject({
        ok: true,
        claims: { agentId: agent.id },
      });

      const status = await deliverTwilioWebhook({
        url: call.statusUrl,
        params: fields(call, 'completed'),
        authToken: twilio.authToken,
        signedUrl: form,
      });
      expect(status.attempts.map((r) => r.status)).toEqual([401, 204]);
      expect(await p.store.leaseCount('global')).toBe(0);
      // Both reached the call's record: admitted, then Twilio's `completed` (no media stream was
      // opened here, so the call ends as never streamed).
      const ended = await waitForCall(call.id, (c) => c.endedAt !== null, 'call ended');
      expect(ended.timeline.map((e: Json) => e.type)).toEqual(['call.admitted', 'call.status']);
      expect(ended.timeline[1].data).toMatchObject({ status: 'completed', admitted: true });
    });
  }

  it('refuses the webhooks without the credentials (401), with a wrong password (401), or a bad signature (403)', async () => {
    const call = await placeCall();
    const params = fields(call, 'in-progress');
    const bare = call.voiceUrl.replace(`sipai:${SHARED_SECRET}@`, '');
    const wrong = call.voiceUrl.replace(SHARED_SECRET, 'not-the-shared-secret-0123456789');

    // A URL pasted without the credentials: Twilio has nothing to answer the challenge with.
    const withoutCredentials = await deliverTwilioWebhook({ url: bare, params, authToken: twilio.authToken });
    expect(withoutCredentials.attempts.map((r) => r.status)).toEqual([401]);
    const wrongPassword = await deliverTwilioWebhook({ url: wrong, params, authToken: twilio.authToken });
    expect(wrongPassword.attempts.map((r) => r.status)).toEqual([401, 401]);
    const forged = await deliverTwilioWebhook({
      url: call.voiceUrl,
      params,
      authToken: 'not-the-twilio-auth-token-0123',
    });
    expect(forged.attempts.map((r) => r.status)).toEqual([401, 403]);
    expect(JSON.parse(forged.body)).toMatchObject({ error: { code: 'bad_signature' } });
    // Nothing was admitted: the call is still only the lease its origination took.
    expect(await p.store.get(keys.call(call.id))).toBeNull();
    expect(await p.store.leaseCount('global')).toBe(1);
  });

  it('never shows the secret when Twilio refuses a call quoting the URL it was given', async () => {
    twilio.fault({
      status: 400,
      code: 21205,
      message: `Url is not a valid URL: http://sipai:${SHARED_SECRET}@x/`,
    });
    try {
      const res = await p.api('POST', '/v1/calls', {
        key,
        body: { agentId: agent.id, to: '+14155553999', from: '+14155550100', provider: 'twilio' },
      });
      expect(res.status).toBe(502);
      expect(res.body.error).toMatchObject({ code: 'provider_error', details: { provider: 'twilio' } });
      expect(res.body.error.message).toContain('Url is not a valid URL: http://sipai:***@x/');
      expect(JSON.stringify(res.body)).not.toContain(SHARED_SECRET);
    } finally {
      twilio.fault(null);
    }
  });

  /** An API Gateway event for a webhook Twilio made to the gateway with credentials in its URL. */
  function gatewayEvent(rawPath: string, query: string, body: string, headers: Record<string, string>) {
    return {
      version: '2.0',
      routeKey: '$default',
      rawPath,
      rawQueryString: query,
      headers: {
        host: 'hooks.voice.example.org',
        'x-forwarded-proto': 'https',
        'x-forwarded-port': '443',
        'content-type': 'application/x-www-form-urlencoded',
        ...headers,
      },
      requestContext: {
        domainName: 'hooks.voice.example.org',
        requestId: 'req-shared-secret',
        http: { method: 'POST', path: rawPath, sourceIp: '54.172.60.1' },
      },
      body: Buffer.from(body).toString('base64'),
      isBase64Encoded: true,
    } satisfies HttpApiEvent;
  }

  it('passes Basic auth and X-Telephony-Secret through the webhook Lambda to core', async () => {
    const forward = createForwarder({ coreUrl: p.url, timeoutMs: 5000, forwarderSecret: FORWARDER_SECRET });
    const call = await placeCall();
    const query = new URL(call.statusUrl).search.slice(1);
    const params = fields(call, 'busy');
    const body = new URLSearchParams(params).toString();
    // The operator's URL for the gateway, as Twilio was given it, signed as configured.
    const configured = `https://sipai:${SHARED_SECRET}@hooks.voice.example.org/webhooks/twilio/status?${query}`;
    const signature = computeTwilioSignature(configured, params, twilio.authToken);

    const challenged = await forward(
      gatewayEvent('/webhooks/twilio/status', query, body, { 'x-twilio-signature': signature }),
    );
    expect(challenged.statusCode).toBe(401);
    expect(challenged.headers['www-authenticate']).toMatch(/^Basic /);
    const authorization = `Basic ${Buffer.from(`sipai:${SHARED_SECRET}`).toString('base64')}`;
    const admitted = await forward(
      gatewayEvent('/webhooks/twilio/status', query, body, {
        'x-twilio-signature': signature,
        authorization,
      }),
    );
    expect(admitted.statusCode, admitted.body).toBe(204);
    expect(await p.store.leaseCount('global')).toBe(0);
    await waitForCall(call.id, (c) => c.status === 'busy', 'call busy');

    // A Jambonz status callback with the secret as a header, through the same Lambda.
    const jambonzBody = JSON.stringify({ call_sid: 'lambda-jambonz-1', call_status: 'completed' });
    const jambonzEvent = (headers: Record<string, string>) => ({
      ...gatewayEvent('/telephony/jambonz/status', '', jambonzBody, {
        'content-type': 'application/json',
        'jambonz-signature': signJambonz(JAMBONZ_SECRET, jambonzBody, Math.floor(Date.now() / 1000)),
        ...headers,
      }),
    });
    expect((await forward(jambonzEvent({}))).statusCode).toBe(401);
    expect((await forward(jambonzEvent({ 'x-telephony-secret': SHARED_SECRET }))).statusCode).toBe(204);
  });
});
