import { createHash, generateKeyPairSync, randomUUID } from 'node:crypto';
import { validate as validateJambonzVerbs } from '@jambonz/verb-specifications';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import twilio from 'twilio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Core } from '../../../core/app.ts';
import { mintToken, verifyToken } from '../../../core/auth/tokens.ts';
import { parseConfig } from '../../../core/config/index.ts';
import { createLogger } from '../../../core/observability/index.ts';
import { type RunningHttpServer, startHttpServer } from '../../../core/server/index.ts';
import { keys, MemoryStore } from '../../../core/store/index.ts';
import { signJambonz } from '../../../core/telephony/signatures/jambonz.ts';
import { signTelnyx } from '../../../core/telephony/signatures/telnyx.ts';
import { twilioClient } from '../../support/media-clients.ts';

const PUBLIC = 'https://voice.example.com';
const TWILIO_TOKEN = 'twilio-auth-token-0123456789abcdef';
const JAMBONZ_SECRET = 'jambonz-webhook-secret';
const WS_SECRET = 'webhook-test-ws-secret-0123456789';
const CORE_KEY = 'core-operator-key';
const FORWARDER_SECRET = 'webhook-test-forwarder-secret-0123';
const telnyxKeys = generateKeyPairSync('ed25519');
const telnyxPublicB64 = Buffer.from(telnyxKeys.publicKey.export({ format: 'der', type: 'spki' }))
  .subarray(-32)
  .toString('base64');

const xml = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@' });
const silent = { info() {}, warn() {}, error() {}, debug() {} };

describe('provider webhooks', () => {
  const store = new MemoryStore();
  let core: Core;
  let http: RunningHttpServer;
  let base: string;

  beforeAll(async () => {
    const config = parseConfig({
      PORT: '0',
      PUBLIC_BASE_URL: PUBLIC,
      REALTIME_WS_SECRET: WS_SECRET,
      TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
      JAMBONZ_WEBHOOK_SECRET: `old-secret-rotated-out,${JAMBONZ_SECRET}`,
      TELNYX_PUBLIC_KEY: telnyxPublicB64,
      TELEPHONY_FORWARDER_SECRET: FORWARDER_SECRET,
      TELEPHONY_GLOBAL_MAX_CONCURRENCY: '3',
      CORE_API_KEY: CORE_KEY,
      LOG_LEVEL: 'silent',
    });
    const log = createLogger({ level: 'silent', service: 'test' });
    core = new Core({ config, store, log });
    http = startHttpServer({ port: 0, hostname: '127.0.0.1', plane: core, log });
    base = http.url;
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

  const globalCount = () => store.leaseCount('global');

  function twilioForm(callSid: string, extra: Record<string, string> = {}) {
    return {
      CallSid: callSid,
      AccountSid: 'AC123',
      From: '+14155550100',
      To: '+15005550006',
      CallStatus: 'ringing',
      Direction: 'inbound',
      ...extra,
    };
  }

  async function postTwilio(
    path: string,
    params: Record<string, string>,
    opts: { signWith?: Record<string, string>; signedUrl?: string; headers?: Record<string, string> } = {},
  ) {
    const signedUrl = opts.signedUrl ?? `${PUBLIC}${path}`;
    const signature = twilio.getExpectedTwilioSignature(TWILIO_TOKEN, signedUrl, opts.signWith ?? params);
    return fetch(`${base}${path}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-twilio-signature': signature,
        ...opts.headers,
      },
      body: new URLSearchParams(params).toString(),
    });
  }

  async function endTwilio(callSid: string) {
    const res = await postTwilio(
      '/telephony/twilio/status',
      twilioForm(callSid, { CallStatus: 'completed' }),
    );
    expect(res.status).toBe(204);
  }

  describe('Twilio', () => {
    it('answers a call signed by the twilio library with TwiML that connects a two-way stream', async () => {
      const callSid = `CA${randomUUID().replaceAll('-', '')}`;
      const res = await postTwilio('/telephony/twilio/voice', twilioForm(callSid));
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/xml');
      const body = await res.text();
      expect(XMLValidator.validate(body)).toBe(true);
      const doc = xml.parse(body);
      // Twilio's documented shape: <Response><Connect><Stream url><Parameter name value/>…
      const stream = doc.Response.Connect.Stream;
      expect(stream['@url']).toBe('wss://voice.example.com/telephony/twilio/stream');
      const params = Object.fromEntries(
        [stream.Parameter].flat().map((p: Record<string, string>) => [p['@name'], p['@value']]),
      );
      expect(params.agentId).toBe('echo');
      const token = verifyToken(WS_SECRET, params.token, { kind: 'stream', callId: callSid });
      expect(token).toMatchObject({ ok: true, claims: { agentId: 'echo', sub: callSid } });
      expect(await store.get(keys.call(callSid))).not.toBeNull();
      await endTwilio(callSid);
      expect(await store.get(keys.call(callSid))).toBeNull();
    });

    it('rejects a tampered parameter, URL or signature with 403 and takes nothing', async () => {
      const callSid = `CA${randomUUID().replaceAll('-', '')}`;
      const before = await globalCount();
      const params = twilioForm(callSid);
      // A parameter changed after signing.
      expect(
        (await postTwilio('/telephony/twilio/voice', { ...params, To: '+15005550007' }, { signWith: params }))
          .status,
      ).toBe(403);
      // Signed for another URL.
      expect(
        (
          await postTwilio('/telephony/twilio/voice', params, {
            signedUrl: `${PUBLIC}/telephony/twilio/voice?x=1`,
          })
        ).status,
      ).toBe(403);
      // One byte of the signature changed.
      const good = twilio.getExpectedTwilioSignature(
        TWILIO_TOKEN,
        `${PUBLIC}/telephony/twilio/voice`,
        params,
      );
      const bad = (good[0] === 'A' ? 'B' : 'A') + good.slice(1);
      const res = await fetch(`${base}/telephony/twilio/voice`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': bad },
        body: new URLSearchParams(params).toString(),
      });
      expect(res.status).toBe(403);
      expect(await res.json()).toMatchObject({ error: { code: 'bad_signature' } });
      // No signature at all.
      const none = await fetch(`${base}/telephony/twilio/voice`, {
        method: 'POST',
        body: new URLSearchParams(params).toString(),
      });
      expect(none.status).toBe(403);
      expect(await globalCount()).toBe(before);
      expect(await store.get(keys.call(callSid))).toBeNull();
    });

    it('verifies against the original public URL forwarded by the webhook Lambda, and only from it', async () => {
      const callSid = `CA${randomUUID().replaceAll('-', '')}`;
      const original = 'https://hooks.example.com/telephony/twilio/voice';
      const before = await globalCount();
      // Anyone can send the header: without the forwarder's secret it is ignored.
      const forged = await postTwilio('/telephony/twilio/voice', twilioForm(callSid), {
        signedUrl: original,
        headers: { 'x-sipai-original-url': original },
      });
      expect(forged.status).toBe(403);
      expect(await globalCount()).toBe(before);
      const res = await postTwilio('/telephony/twilio/voice', twilioForm(callSid), {
        signedUrl: original,
        headers: { 'x-sipai-original-url': original, 'x-sipai-forwarder-secret': FORWARDER_SECRET },
      });
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('<Connect><Stream');
      await endTwilio(callSid);
    });

    it('accepts a JSON status callback signed with bodySHA256 and rejects a changed body byte', async () => {
      const callSid = `CA${randomUUID().replaceAll('-', '')}`;
      expect((await postTwilio('/telephony/twilio/voice', twilioForm(callSid))).status).toBe(200);
      const before = await globalCount();
      const body = JSON.stringify({ CallSid: callSid, CallStatus: 'completed' });
      const hash = createHash('sha256').update(body).digest('hex');
      const path = `/telephony/twilio/status?bodySHA256=${hash}`;
      const signature = twilio.getExpectedTwilioSignature(TWILIO_TOKEN, `${PUBLIC}${path}`, {});
      expect(twilio.validateRequestWithBody(TWILIO_TOKEN, signature, `${PUBLIC}${path}`, body)).toBe(true);
      const send = (b: string) =>
        fetch(`${base}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-twilio-signature': signature },
          body: b,
        });
      expect((await send(body.replace('completed', 'completes'))).status).toBe(403);
      expect(await globalCount()).toBe(before);
      expect((await send(body)).status).toBe(204);
      expect(await globalCount()).toBe(before - 1);
    });

    it('says busy politely at capacity (never a 5xx), and a status callback frees the slot', async () => {
      const calls = Array.from({ length: 4 }, () => `CA${randomUUID().replaceAll('-', '')}`);
      const answers = [];
      for (const c of calls)
        answers.push(await (await postTwilio('/telephony/twilio/voice', twilioForm(c))).text());
      expect(answers.filter((a) => a.includes('<Connect>'))).toHaveLength(3);
      const busy = xml.parse(answers[3]!);
      expect(busy.Response.Reject['@reason']).toBe('busy');
      expect(await globalCount()).toBe(3);
      await endTwilio(calls[0]!);
      await endTwilio(calls[0]!); // a repeated callback is harmless
      expect(await globalCount()).toBe(2);
      const retry = await (await postTwilio('/telephony/twilio/voice', twilioForm(calls[3]!))).text();
      expect(retry).toContain('<Connect>');
      for (const c of calls.slice(1)) await endTwilio(c);
      expect(await globalCount()).toBe(0);
    });
  });

  describe('Jambonz', () => {
    const post = (path: string, body: unknown, tSec = Math.floor(Date.now() / 1000), raw?: string) => {
      const text = raw ?? JSON.stringify(body);
      return fetch(`${base}${path}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'jambonz-signature': signJambonz(JAMBONZ_SECRET, text, tSec),
        },
        body: text,
      });
    };
    const callBody = (callSid: string, extra: Record<string, unknown> = {}) => ({
      call_sid: callSid,
      account_sid: 'acc',
      application_sid: 'app',
      direction: 'inbound',
      from: '+14155550100',
      to: '+15005550006',
      call_status: 'trying',
      sip_status: 100,
      ...extra,
    });

    it('answers with a listen verb that validates and opens bidirectional audio back to core', async () => {
      const callSid = randomUUID();
      const res = await post('/telephony/jambonz/call', callBody(callSid));
      expect(res.status).toBe(200);
      const verbs = (await res.json()) as Record<string, unknown>[];
      expect(() => validateJambonzVerbs(silent, verbs)).not.toThrow();
      // The validator does reject what breaks the spec: a listen with no url, an unknown property.
      expect(() => validateJambonzVerbs(silent, [{ verb: 'listen', mixType: 'mono' }])).toThrow(/url/);
      expect(() => validateJambonzVerbs(silent, [{ ...verbs[0], bogus: 1 }])).toThrow(/unknown property/);
      const listen = verbs[0] as {
        url: string;
        bidirectionalAudio: { sampleRate: number };
        metadata: { token: string };
      };
      expect(verbs.map((v) => v.verb)).toEqual(['listen', 'hangup']);
      expect(listen.url).toBe('wss://voice.example.com/telephony/jambonz/stream?rate=8000');
      expect(listen.bidirectionalAudio).toMatchObject({ enabled: true, streaming: true, sampleRate: 8000 });
      expect(verifyToken(WS_SECRET, listen.metadata.token, { kind: 'stream', callId: callSid }).ok).toBe(
        true,
      );
      const status = await post('/telephony/jambonz/status', callBody(callSid, { call_status: 'completed' }));
      expect(status.status).toBe(204);
      expect(await store.get(keys.call(callSid))).toBeNull();
    });

    it('rejects an expired timestamp and an unsigned or re-serialised body with 403', async () => {
      const callSid = randomUUID();
      const before = await globalCount();
      expect(
        (await post('/telephony/jambonz/call', callBody(callSid), Math.floor(Date.now() / 1000) - 301))
          .status,
      ).toBe(403);
      const text = JSON.stringify(callBody(callSid));
      const header = signJambonz(JAMBONZ_SECRET, text, Math.floor(Date.now() / 1000));
      const reserialised = await fetch(`${base}/telephony/jambonz/call`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'jambonz-signature': header },
        body: JSON.stringify(callBody(callSid), null, 1),
      });
      expect(reserialised.status).toBe(403);
      expect((await fetch(`${base}/telephony/jambonz/call`, { method: 'POST', body: text })).status).toBe(
        403,
      );
      expect(await globalCount()).toBe(before);
    });

    it('answers malformed JSON (validly signed) with 400', async () => {
      const res = await post('/telephony/jambonz/call', null, undefined, '{"call_sid": ');
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: 'malformed_body' } });
    });

    it('declines with sip:decline 503 at capacity and 404 for a number nobody routes', async () => {
      const held = Array.from({ length: 3 }, () => randomUUID());
      for (const c of held)
        expect((await (await post('/telephony/jambonz/call', callBody(c))).json())[0].verb).toBe('listen');
      const full = (await (await post('/telephony/jambonz/call', callBody(randomUUID()))).json()) as Record<
        string,
        unknown
      >[];
      expect(full).toEqual([{ verb: 'sip:decline', status: 503, reason: 'Service Unavailable' }]);
      expect(() => validateJambonzVerbs(silent, full)).not.toThrow();
      for (const c of held)
        await post('/telephony/jambonz/status', callBody(c, { call_status: 'no-answer' }));
      const unrouted = (await (
        await post('/telephony/jambonz/call', callBody(randomUUID(), { to: '+19999999999' }))
      ).json()) as Record<string, unknown>[];
      expect(unrouted).toEqual([{ verb: 'sip:decline', status: 404, reason: 'Not Found' }]);
      expect(() => validateJambonzVerbs(silent, unrouted)).not.toThrow();
      expect(await globalCount()).toBe(0);
    });
  });

  describe('Telnyx', () => {
    const post = (path: string, params: Record<string, string>, tamper = false) => {
      const body = new URLSearchParams(params).toString();
      const { signature, timestamp } = signTelnyx(telnyxKeys.privateKey, body, Math.floor(Date.now() / 1000));
      return fetch(`${base}${path}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'telnyx-signature-ed25519': signature,
          'telnyx-timestamp': timestamp,
        },
        body: tamper ? `${body}&x=1` : body,
      });
    };

    it('answers a signed TeXML webhook with a bidirectional RTP stream and rejects a tampered one', async () => {
      const callSid = `v3:${randomUUID()}`;
      const params = { CallSid: callSid, From: '+14155550100', To: '+15005550006', CallStatus: 'ringing' };
      expect((await post('/telephony/telnyx/voice', params, true)).status).toBe(403);
      const res = await post('/telephony/telnyx/voice', params);
      expect(res.status).toBe(200);
      const body = await res.text();
      expect(XMLValidator.validate(body)).toBe(true);
      const stream = xml.parse(body).Response.Start.Stream;
      expect(stream['@bidirectionalMode']).toBe('rtp');
      expect(stream['@bidirectionalCodec']).toBe('PCMU');
      const url = new URL(stream['@url']);
      expect(url.origin + url.pathname).toBe('wss://voice.example.com/telephony/telnyx/stream');
      expect(
        verifyToken(WS_SECRET, url.searchParams.get('token'), { kind: 'stream', callId: callSid }).ok,
      ).toBe(true);
      expect((await post('/telephony/telnyx/status', { ...params, CallStatus: 'completed' })).status).toBe(
        204,
      );
      expect(await store.get(keys.call(callSid))).toBeNull();
    });
  });

  describe('media streams and capacity', () => {
    it('refuses a stream for a call that was never admitted, or that already ended', async () => {
      const never = `CA${randomUUID().replaceAll('-', '')}`;
      const client = await twilioClient({
        baseWsUrl: base.replace('http', 'ws'),
        callId: never,
        token: mintToken(WS_SECRET, { kind: 'stream', sub: never, agentId: 'echo' }, 60),
      });
      client.start();
      expect(await client.closed).toMatchObject({
        code: 1008,
        reason: 'call was never admitted, or has already ended',
      });

      const ended = `CA${randomUUID().replaceAll('-', '')}`;
      const twiml = await (await postTwilio('/telephony/twilio/voice', twilioForm(ended))).text();
      const token = /name="token" value="([^"]+)"/.exec(twiml)![1]!;
      await endTwilio(ended);
      const late = await twilioClient({ baseWsUrl: base.replace('http', 'ws'), callId: ended, token });
      late.start();
      expect((await late.closed).code).toBe(1008);
    });

    it('ends a live call when a hangup command arrives on its channel', async () => {
      const callSid = `CA${randomUUID().replaceAll('-', '')}`;
      const twiml = await (await postTwilio('/telephony/twilio/voice', twilioForm(callSid))).text();
      const token = /name="token" value="([^"]+)"/.exec(twiml)![1]!;
      const client = await twilioClient({ baseWsUrl: base.replace('http', 'ws'), callId: callSid, token });
      client.start();
      // Listed means subscribed: a command may follow at once (live-commands.test.ts).
      while (!core.media.sessions.has(callSid)) await Bun.sleep(10);
      expect(await store.publish(keys.callCommands(callSid), 'not json')).toBe(1);
      expect(core.media.sessions.has(callSid)).toBe(true);
      expect(
        await store.publish(
          keys.callCommands(callSid),
          JSON.stringify({ type: 'hangup', reason: 'operator' }),
        ),
      ).toBe(1);
      expect((await client.closed).code).toBe(1000);
      const timeline = (await store.range(keys.callTimeline(callSid))).map((e) => e.fields.type);
      expect(timeline.slice(-2)).toEqual(['command', 'call.ended']);
      // Nobody is subscribed any more (unsubscribing follows the end): a command reaches no one.
      const unsubscribedBy = performance.now() + 10_000;
      while ((await store.publish(keys.callCommands(callSid), JSON.stringify({ type: 'hangup' }))) !== 0) {
        expect(performance.now()).toBeLessThan(unsubscribedBy);
        await Bun.sleep(10);
      }
    });

    it('frees the slots when the stream stops, and reports counts only with the core key', async () => {
      const callSid = `CA${randomUUID().replaceAll('-', '')}`;
      const twiml = await (await postTwilio('/telephony/twilio/voice', twilioForm(callSid))).text();
      const token = /name="token" value="([^"]+)"/.exec(twiml)![1]!;
      const client = await twilioClient({ baseWsUrl: base.replace('http', 'ws'), callId: callSid, token });
      client.start();
      while (!core.media.sessions.has(callSid)) await Bun.sleep(10);
      expect((await fetch(`${base}/telephony/capacity`)).status).toBe(401);
      const report = await fetch(`${base}/telephony/capacity`, {
        headers: { authorization: `Bearer ${CORE_KEY}` },
      });
      expect(report.status).toBe(200);
      expect(await report.json()).toMatchObject({ global: { count: 1, limit: 3 }, activeSessionsHere: 1 });
      client.stop();
      await client.closed;
      const deadline = Date.now() + 10_000;
      while ((await globalCount()) > 0 && Date.now() < deadline) await Bun.sleep(20);
      expect(await globalCount()).toBe(0);
    });
  });
});
