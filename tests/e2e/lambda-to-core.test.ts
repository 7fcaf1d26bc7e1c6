import { readFileSync } from 'node:fs';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Core } from '../../core/app.ts';
import { verifyToken } from '../../core/auth/tokens.ts';
import { parseConfig } from '../../core/config/index.ts';
import { createForwarder, type HttpApiEvent } from '../../core/lambda.ts';
import { createLogger } from '../../core/observability/index.ts';
import { type RunningHttpServer, startHttpServer } from '../../core/server/index.ts';
import { keys, MemoryStore } from '../../core/store/index.ts';

/** The auth token the recorded event's X-Twilio-Signature was made with (see tests/core/lambda.test.ts). */
const FIXTURE_AUTH_TOKEN = 'fixture-token-1f2e3d4c5b6a79880';
const WS_SECRET = 'lambda-e2e-secret-0123456789';
const FORWARDER_SECRET = 'lambda-e2e-forwarder-secret-01234';
const event = JSON.parse(
  readFileSync(new URL('../fixtures/lambda/twilio-voice.json', import.meta.url), 'utf8'),
) as HttpApiEvent;
/**
 * The runbooks' provider URL: Twilio configured with `{gateway}/webhooks/twilio/voice` on the
 * gateway's own host, its signature made over that URL (HMAC-SHA1 with FIXTURE_AUTH_TOKEN).
 */
const gatewayEvent = JSON.parse(
  readFileSync(new URL('../fixtures/lambda/twilio-webhooks-voice.json', import.meta.url), 'utf8'),
) as HttpApiEvent;

describe('voice-webhook Lambda in front of a running core', () => {
  const store = new MemoryStore();
  let core: Core;
  let http: RunningHttpServer;

  beforeAll(async () => {
    // The core's own PUBLIC_BASE_URL differs from the public hostname Twilio signed, as it
    // does behind API Gateway: only the forwarded original URL can make the signature verify.
    const config = parseConfig({
      PORT: '0',
      PUBLIC_BASE_URL: 'https://core.internal.example',
      REALTIME_WS_SECRET: WS_SECRET,
      TWILIO_AUTH_TOKEN: FIXTURE_AUTH_TOKEN,
      TELEPHONY_FORWARDER_SECRET: FORWARDER_SECRET,
      LOG_LEVEL: 'silent',
    });
    const log = createLogger({ level: 'silent', service: 'test' });
    core = new Core({ config, store, log });
    http = startHttpServer({ port: 0, hostname: '127.0.0.1', plane: core, log });
    await store.set(keys.agent('agt_7Qm2xK'), JSON.stringify({ brain: 'echo' }));
  });
  afterAll(async () => {
    await core.drain(0);
    await http.stop(0);
    await store.close();
  });

  it('returns the core’s TwiML unchanged, with the signature still valid through the hop', async () => {
    const forward = createForwarder({
      coreUrl: http.url,
      timeoutMs: 3000,
      forwarderSecret: FORWARDER_SECRET,
    });
    const direct = await fetch(`${http.url}/telephony/twilio/voice?${event.rawQueryString}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-twilio-signature': event.headers?.['x-twilio-signature'] ?? '',
      },
      body: Buffer.from(event.body!, 'base64'),
    });
    // Straight to the core, the URL differs from the one Twilio signed: rejected.
    expect(direct.status).toBe(403);
    // Claiming the signed URL without the forwarder's secret: the same.
    const forged = await fetch(`${http.url}/telephony/twilio/voice?${event.rawQueryString}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-twilio-signature': event.headers?.['x-twilio-signature'] ?? '',
        'x-sipai-original-url': `https://voice.sipai.example.com/telephony/twilio/voice?${event.rawQueryString}`,
      },
      body: Buffer.from(event.body!, 'base64'),
    });
    expect(forged.status).toBe(403);
    // A forwarder with another secret is no better.
    const impostor = await createForwarder({
      coreUrl: http.url,
      timeoutMs: 3000,
      forwarderSecret: 'not-the-core-forwarder-secret-0000',
    })(event);
    expect(impostor.statusCode).toBe(403);
    expect(await store.leaseCount('global')).toBe(0);

    const result = await forward(event);
    expect(result.statusCode).toBe(200);
    expect(result.headers['content-type']).toContain('text/xml');
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@' }).parse(result.body);
    const stream = doc.Response.Connect.Stream;
    expect(stream['@url']).toBe('wss://core.internal.example/telephony/twilio/stream');
    const params = Object.fromEntries(
      [stream.Parameter].flat().map((p: Record<string, string>) => [p['@name'], p['@value']]),
    );
    const callSid = new URLSearchParams(Buffer.from(event.body!, 'base64').toString()).get('CallSid')!;
    expect(verifyToken(WS_SECRET, params.token, { kind: 'stream', callId: callSid })).toMatchObject({
      ok: true,
      claims: { agentId: 'agt_7Qm2xK' },
    });
  });

  it('passes the core’s 403 back when a byte of the body changed on the way', async () => {
    const forward = createForwarder({
      coreUrl: http.url,
      timeoutMs: 3000,
      forwarderSecret: FORWARDER_SECRET,
    });
    const body = Buffer.from(event.body!, 'base64').toString().replace('To=', 'To=%2B1');
    const result = await forward({ ...event, body: Buffer.from(body).toString('base64') });
    expect(result.statusCode).toBe(403);
    expect(JSON.parse(result.body)).toMatchObject({ error: { code: 'bad_signature' } });
  });

  it('takes POST {gateway}/webhooks/twilio/voice to core and verifies it against the gateway URL', async () => {
    const forward = createForwarder({
      coreUrl: http.url,
      timeoutMs: 3000,
      forwarderSecret: FORWARDER_SECRET,
    });
    const callSid = new URLSearchParams(Buffer.from(gatewayEvent.body!, 'base64').toString()).get('CallSid')!;
    // The same signature sent straight to core's route, or claiming core's path as the URL it
    // was made for, does not verify: only the gateway URL the provider called does.
    const direct = await fetch(`${http.url}/telephony/twilio/voice?${gatewayEvent.rawQueryString}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-twilio-signature': gatewayEvent.headers?.['x-twilio-signature'] ?? '',
        'x-sipai-forwarder-secret': FORWARDER_SECRET,
        'x-sipai-original-url': `https://hooks.voice.example.org/telephony/twilio/voice?${gatewayEvent.rawQueryString}`,
      },
      body: Buffer.from(gatewayEvent.body!, 'base64'),
    });
    expect(direct.status).toBe(403);
    // A gateway path that is not an alias of the requested route is not trusted either.
    const status = await forward({ ...gatewayEvent, rawPath: '/webhooks/twilio/status' });
    expect(status.statusCode).toBe(403);

    const result = await forward(gatewayEvent);
    expect(result.statusCode).toBe(200);
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@' }).parse(result.body);
    const params = Object.fromEntries(
      [doc.Response.Connect.Stream.Parameter]
        .flat()
        .map((p: Record<string, string>) => [p['@name'], p['@value']]),
    );
    expect(verifyToken(WS_SECRET, params.token, { kind: 'stream', callId: callSid })).toMatchObject({
      ok: true,
      claims: { agentId: 'agt_7Qm2xK' },
    });
  });
});
