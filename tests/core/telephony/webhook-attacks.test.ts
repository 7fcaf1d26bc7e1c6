/**
 * Attacks on the provider webhooks, over real HTTP against a running core, on the MemoryStore and
 * on a real Redis: a forged `x-sipai-original-url`, a signed request with its unsigned parts
 * altered, a call webhook replayed after its call ended, a status callback delivered twice.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { validate as validateJambonzVerbs } from '@jambonz/verb-specifications';
import { XMLParser } from 'fast-xml-parser';
import twilio from 'twilio';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Core } from '../../../core/app.ts';
import { parseConfig } from '../../../core/config/index.ts';
import { createForwarder, type HttpApiEvent } from '../../../core/lambda.ts';
import { createLogger } from '../../../core/observability/index.ts';
import { type RunningHttpServer, startHttpServer } from '../../../core/server/index.ts';
import { keys, MemoryStore, RedisStore, type Store } from '../../../core/store/index.ts';
import { signJambonz } from '../../../core/telephony/signatures/jambonz.ts';
import { signTelnyx } from '../../../core/telephony/signatures/telnyx.ts';
import { twilioClient } from '../../support/media-clients.ts';

/** Core's own base URL: not the public hostname Twilio signs behind the Lambda. */
const CORE_BASE = 'https://core.internal.example';
const HOOKS = 'https://hooks.voice.example.com';
const TWILIO_TOKEN = 'twilio-auth-token-attacks-0123456';
const JAMBONZ_SECRET = 'jambonz-attacks-secret';
const WS_SECRET = 'attacks-ws-secret-0123456789abcdef';
const FORWARDER_SECRET = 'forwarder-secret-0123456789abcdef';
const CORE_KEY = 'core-operator-key-attacks';
const NUMBER = '+15005550006';
const telnyxKeys = generateKeyPairSync('ed25519');
const telnyxPublicB64 = Buffer.from(telnyxKeys.publicKey.export({ format: 'der', type: 'spki' }))
  .subarray(-32)
  .toString('base64');
const xml = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@' });
const silent = { info() {}, warn() {}, error() {}, debug() {} };
const redisUrl = inject('redisUrl');

const stores: [string, () => Promise<Store>][] = [['MemoryStore', async () => new MemoryStore()]];
if (redisUrl) {
  stores.push([
    'RedisStore',
    () => RedisStore.connect(redisUrl, { prefix: `attacks:${randomUUID()}:` }) as Promise<Store>,
  ]);
}

const sid = () => `CA${randomUUID().replaceAll('-', '')}`;

describe.each(stores)('provider webhooks under attack (%s)', (_name, makeStore) => {
  let store: Store;
  let core: Core;
  let http: RunningHttpServer;
  let base: string;

  beforeAll(async () => {
    store = await makeStore();
    const config = parseConfig({
      PORT: '0',
      PUBLIC_BASE_URL: CORE_BASE,
      REALTIME_WS_SECRET: WS_SECRET,
      TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
      JAMBONZ_WEBHOOK_SECRET: JAMBONZ_SECRET,
      TELNYX_PUBLIC_KEY: telnyxPublicB64,
      TELEPHONY_FORWARDER_SECRET: FORWARDER_SECRET,
      TELEPHONY_GLOBAL_MAX_CONCURRENCY: '50',
      CORE_API_KEY: CORE_KEY,
      LOG_LEVEL: 'silent',
    });
    const log = createLogger({ level: 'silent', service: 'test' });
    core = new Core({ config, store, log });
    http = startHttpServer({ port: 0, hostname: '127.0.0.1', plane: core, log });
    base = http.url;
    await store.set(keys.agent('echo'), JSON.stringify({ brain: 'echo' }));
    await store.set(keys.agent('agt_victim'), JSON.stringify({ brain: 'echo' }));
    await store.set(keys.numberRoute(NUMBER), JSON.stringify({ agentId: 'echo', accountId: 'acc_1' }));
  });
  afterAll(async () => {
    await core.drain(0);
    await http.stop(0);
    await store.close();
  });

  /** What `GET /telephony/capacity` reports, as an operator sees it. */
  async function capacity(campaign = 'cmp_victim', agent = 'agt_victim') {
    const res = await fetch(`${base}/telephony/capacity?campaign=${campaign}&agent=${agent}`, {
      headers: { authorization: `Bearer ${CORE_KEY}` },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      global: { count: number };
      campaigns: Record<string, { count: number }>;
      agents: Record<string, { count: number }>;
    };
    return {
      global: body.global.count,
      campaign: body.campaigns[campaign]!.count,
      agent: body.agents[agent]!.count,
    };
  }

  function form(callSid: string, extra: Record<string, string> = {}) {
    return {
      CallSid: callSid,
      AccountSid: 'AC123',
      From: '+14155550100',
      To: NUMBER,
      CallStatus: 'ringing',
      Direction: 'inbound',
      ...extra,
    };
  }

  /** A Twilio request signed for `signedUrl`, sent to core at `pathAndQuery` with `headers`. */
  function sendTwilio(
    pathAndQuery: string,
    params: Record<string, string>,
    signedUrl: string,
    headers: Record<string, string> = {},
  ) {
    return fetch(`${base}${pathAndQuery}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-twilio-signature': twilio.getExpectedTwilioSignature(TWILIO_TOKEN, signedUrl, params),
        ...headers,
      },
      body: new URLSearchParams(params).toString(),
    });
  }

  /** Twilio reaching core directly, at the URL it signed. */
  const direct = (
    pathAndQuery: string,
    params: Record<string, string>,
    headers: Record<string, string> = {},
  ) => sendTwilio(pathAndQuery, params, `${CORE_BASE}${pathAndQuery}`, headers);

  async function statusEvents(callId: string) {
    return (await store.range(keys.events))
      .filter((e) => e.fields.type === 'call.status' && e.fields.callId === callId)
      .map((e) => (JSON.parse(e.fields.data!) as { status: string }).status);
  }

  describe('a forged x-sipai-original-url', () => {
    it('is ignored without the forwarder secret: the signature is checked against the real URL (403)', async () => {
      const before = await capacity();
      // One captured request, signed for another deployment's public URL.
      const captured = `https://hooks.other-deployment.example/telephony/twilio/voice`;
      const params = form(sid());
      const answers: number[] = [];
      for (let i = 0; i < 20; i++) {
        const query = `callId=forged-${i}-${randomUUID()}&agentId=agt_victim&campaignId=cmp_victim`;
        const res = await sendTwilio(`/telephony/twilio/voice?${query}`, params, captured, {
          'x-sipai-original-url': captured,
        });
        answers.push(res.status);
        await res.body?.cancel();
      }
      expect(answers).toEqual(Array(20).fill(403));
      // With a wrong secret, the same.
      const wrong = await sendTwilio(
        '/telephony/twilio/voice?callId=x&agentId=agt_victim',
        params,
        captured,
        {
          'x-sipai-original-url': captured,
          'x-sipai-forwarder-secret': `${FORWARDER_SECRET.slice(0, -1)}x`,
        },
      );
      expect(wrong.status).toBe(403);
      expect(await capacity()).toEqual(before);
    });

    it('cannot end another call with a captured `completed` callback', async () => {
      const victim = sid();
      const campaignQuery = 'callId=call_victim_1&agentId=agt_victim&campaignId=cmp_victim';
      const admitted = await direct(`/telephony/twilio/voice?${campaignQuery}`, form(victim));
      expect(await admitted.text()).toContain('<Connect>');
      const held = await capacity();
      expect(held.campaign).toBeGreaterThanOrEqual(1);
      // A `completed` callback captured from some other call, replayed with the victim's ids.
      const captured = `${HOOKS}/telephony/twilio/status`;
      const res = await sendTwilio(
        `/telephony/twilio/status?${campaignQuery}`,
        form(sid(), { CallStatus: 'completed' }),
        captured,
        { 'x-sipai-original-url': captured },
      );
      expect(res.status).toBe(403);
      expect(await store.get(keys.call('call_victim_1'))).not.toBeNull();
      expect(await capacity()).toEqual(held);
      await direct(`/telephony/twilio/status?${campaignQuery}`, form(victim, { CallStatus: 'completed' }));
      expect((await capacity()).campaign).toBe(held.campaign - 1);
    });

    it('is honoured from the forwarder, and then only the signed URL names the call, agent and campaign', async () => {
      const before = await capacity();
      const callSid = sid();
      const signedPath = '/telephony/twilio/voice?callId=call_signed_1&agentId=echo';
      const signed = `${HOOKS}${signedPath}`;
      // The real query (unsigned) asks for another call, agent and campaign: ignored.
      const res = await sendTwilio(
        '/telephony/twilio/voice?callId=call_forged_1&agentId=agt_victim&campaignId=cmp_victim',
        form(callSid),
        signed,
        { 'x-sipai-original-url': signed, 'x-sipai-forwarder-secret': FORWARDER_SECRET },
      );
      expect(res.status).toBe(200);
      const stream = xml.parse(await res.text()).Response.Connect.Stream;
      const parameters = Object.fromEntries(
        [stream.Parameter].flat().map((p: Record<string, string>) => [p['@name'], p['@value']]),
      );
      expect(parameters.agentId).toBe('echo');
      expect(await store.get(keys.call('call_signed_1'))).not.toBeNull();
      expect(await store.get(keys.call('call_forged_1'))).toBeNull();
      expect(await capacity()).toEqual({ ...before, global: before.global + 1 });
      await direct(
        '/telephony/twilio/status?callId=call_signed_1&agentId=echo',
        form(callSid, { CallStatus: 'completed' }),
      );
      expect(await capacity()).toEqual(before);
    });

    it('through the Lambda, a captured request with its query altered is refused (403)', async () => {
      const before = await capacity();
      const forward = createForwarder({ coreUrl: base, timeoutMs: 3000, forwarderSecret: FORWARDER_SECRET });
      const params = form(sid());
      const signedQuery = 'agentId=echo';
      const event = (rawQueryString: string): HttpApiEvent => ({
        version: '2.0',
        rawPath: '/telephony/twilio/voice',
        rawQueryString,
        headers: {
          host: 'hooks.voice.example.com',
          'content-type': 'application/x-www-form-urlencoded',
          'x-twilio-signature': twilio.getExpectedTwilioSignature(
            TWILIO_TOKEN,
            `${HOOKS}/telephony/twilio/voice?${signedQuery}`,
            params,
          ),
        },
        requestContext: { domainName: 'hooks.voice.example.com', http: { method: 'POST' } },
        body: new URLSearchParams(params).toString(),
        isBase64Encoded: false,
      });
      const altered = await forward(event('agentId=agt_victim&campaignId=cmp_victim&callId=call_x'));
      expect(altered.statusCode).toBe(403);
      expect(await capacity()).toEqual(before);
      // The same request unaltered goes through.
      const genuine = await forward(event(signedQuery));
      expect(genuine.statusCode).toBe(200);
      expect(genuine.body).toContain('<Connect>');
      await direct('/telephony/twilio/status', form(params.CallSid, { CallStatus: 'completed' }));
      expect(await capacity()).toEqual(before);
    });

    it('Telnyx: an unsigned query never picks the agent or campaign (the number route does)', async () => {
      const before = await capacity();
      const callSid = `v3:${randomUUID()}`;
      const body = new URLSearchParams({ CallSid: callSid, From: '+14155550100', To: NUMBER }).toString();
      const { signature, timestamp } = signTelnyx(telnyxKeys.privateKey, body, Math.floor(Date.now() / 1000));
      const res = await fetch(`${base}/telephony/telnyx/voice?agentId=agt_victim&campaignId=cmp_victim`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'telnyx-signature-ed25519': signature,
          'telnyx-timestamp': timestamp,
        },
        body,
      });
      expect(await res.text()).toContain('<Stream');
      const record = JSON.parse((await store.get(keys.call(callSid)))!) as {
        agentId: string;
        campaignId?: string;
      };
      expect(record.agentId).toBe('echo');
      expect(record.campaignId).toBeUndefined();
      expect(await capacity()).toEqual({ ...before, global: before.global + 1 });
      await core.admission.statusChanged({
        provider: 'telnyx',
        callId: callSid,
        providerCallId: callSid,
        status: 'completed',
      });
    });
  });

  describe('replays of ended calls', () => {
    it('Twilio: a voice webhook replayed after `completed` is refused as busy and holds no slot', async () => {
      const callSid = sid();
      const path = '/telephony/twilio/voice?callId=call_replay_1&agentId=agt_victim&campaignId=cmp_victim';
      const before = await capacity();
      expect(await (await direct(path, form(callSid))).text()).toContain('<Connect>');
      // A retry while the call is live is answered again and still holds one slot.
      expect(await (await direct(path, form(callSid))).text()).toContain('<Connect>');
      expect(await capacity()).toEqual({
        global: before.global + 1,
        campaign: before.campaign + 1,
        agent: before.agent,
      });
      const status = await direct(
        '/telephony/twilio/status?callId=call_replay_1&agentId=agt_victim&campaignId=cmp_victim',
        form(callSid, { CallStatus: 'completed' }),
      );
      expect(status.status).toBe(204);
      expect(await capacity()).toEqual(before);
      for (let i = 0; i < 3; i++) {
        const replay = await direct(path, form(callSid));
        expect(replay.status).toBe(200);
        expect(xml.parse(await replay.text()).Response.Reject['@reason']).toBe('busy');
      }
      expect(await capacity()).toEqual(before);
      expect(await store.get(keys.call('call_replay_1'))).toBeNull();
    });

    it('Twilio: an inbound call replayed after its media stream ended is refused too', async () => {
      const callSid = sid();
      const before = await capacity();
      const twiml = await (await direct('/telephony/twilio/voice', form(callSid))).text();
      const token = /name="token" value="([^"]+)"/.exec(twiml)![1]!;
      const client = await twilioClient({ baseWsUrl: base.replace('http', 'ws'), callId: callSid, token });
      client.start();
      while (!core.media.sessions.has(callSid)) await Bun.sleep(10);
      client.stop();
      await client.closed;
      while ((await store.get(keys.call(callSid))) !== null) await Bun.sleep(10);
      const replay = await (await direct('/telephony/twilio/voice', form(callSid))).text();
      expect(xml.parse(replay).Response.Reject['@reason']).toBe('busy');
      expect(await capacity()).toEqual(before);
    });

    it('Jambonz: a call webhook replayed after `completed` gets sip:decline and holds no slot', async () => {
      const post = (path: string, body: unknown) => {
        const text = JSON.stringify(body);
        return fetch(`${base}${path}`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'jambonz-signature': signJambonz(JAMBONZ_SECRET, text, Math.floor(Date.now() / 1000)),
          },
          body: text,
        });
      };
      const callSid = randomUUID();
      const call = {
        call_sid: callSid,
        direction: 'inbound',
        from: '+14155550100',
        to: NUMBER,
        call_status: 'trying',
      };
      const before = await capacity();
      expect(
        ((await (await post('/telephony/jambonz/call', call)).json()) as { verb: string }[])[0]!.verb,
      ).toBe('listen');
      const ended = { ...call, call_status: 'completed' };
      expect((await post('/telephony/jambonz/status', ended)).status).toBe(204);
      expect((await post('/telephony/jambonz/status', ended)).status).toBe(204);
      const replay = (await (await post('/telephony/jambonz/call', call)).json()) as Record<
        string,
        unknown
      >[];
      expect(replay).toEqual([{ verb: 'sip:decline', status: 486, reason: 'Busy Here' }]);
      expect(() => validateJambonzVerbs(silent, replay)).not.toThrow();
      expect(await capacity()).toEqual(before);
      expect(await statusEvents(callSid)).toEqual(['completed']);
    });

    it('Telnyx: a voice webhook replayed after `completed` gets its TeXML reject and holds no slot', async () => {
      const post = (path: string, params: Record<string, string>) => {
        const body = new URLSearchParams(params).toString();
        const { signature, timestamp } = signTelnyx(
          telnyxKeys.privateKey,
          body,
          Math.floor(Date.now() / 1000),
        );
        return fetch(`${base}${path}`, {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            'telnyx-signature-ed25519': signature,
            'telnyx-timestamp': timestamp,
          },
          body,
        });
      };
      const callSid = `v3:${randomUUID()}`;
      const params = { CallSid: callSid, From: '+14155550100', To: NUMBER, CallStatus: 'ringing' };
      const before = await capacity();
      expect(await (await post('/telephony/telnyx/voice', params)).text()).toContain('<Stream');
      expect((await post('/telephony/telnyx/status', { ...params, CallStatus: 'completed' })).status).toBe(
        204,
      );
      const replay = await (await post('/telephony/telnyx/voice', params)).text();
      expect(xml.parse(replay).Response.Reject['@reason']).toBe('busy');
      expect(await capacity()).toEqual(before);
    });
  });

  describe('duplicate status callbacks', () => {
    it('a `completed` delivered twice (a replay, or a retry with its idempotency token) is one call.status event', async () => {
      const callSid = sid();
      expect(await (await direct('/telephony/twilio/voice', form(callSid))).text()).toContain('<Connect>');
      const completed = form(callSid, { CallStatus: 'completed' });
      const token = { 'i-twilio-idempotency-token': randomUUID() };
      const answers = await Promise.all([
        direct('/telephony/twilio/status', completed, token),
        direct('/telephony/twilio/status', completed, token),
        direct('/telephony/twilio/status', completed),
        direct('/telephony/twilio/status', completed),
      ]);
      expect(answers.map((a) => a.status)).toEqual([204, 204, 204, 204]);
      expect(await statusEvents(callSid)).toEqual(['completed']);
    });

    it('each distinct state is still reported, once', async () => {
      const callSid = sid();
      expect(await (await direct('/telephony/twilio/voice', form(callSid))).text()).toContain('<Connect>');
      for (const state of ['ringing', 'in-progress', 'in-progress', 'completed', 'completed']) {
        expect((await direct('/telephony/twilio/status', form(callSid, { CallStatus: state }))).status).toBe(
          204,
        );
      }
      expect(await statusEvents(callSid)).toEqual(['ringing', 'in-progress', 'completed']);
    });
  });
});
