import { randomBytes, randomUUID } from 'node:crypto';
import { validate as validateJambonzVerbs } from '@jambonz/verb-specifications';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../../core/auth/tokens.ts';
import { ProviderError } from '../../../core/telephony/index.ts';
import { signJambonz } from '../../../core/telephony/signatures/jambonz.ts';
import { TelnyxRestClient } from '../../../core/telephony/telnyx-rest.ts';
import {
  createTelnyxHangup,
  createTransfer,
  type TransferConfig,
  TransferError,
  type TransferSession,
} from '../../../core/telephony/transfer.ts';
import { jambonzTransferHook, mintTransferToken } from '../../../core/telephony/webhooks/jambonz-transfer.ts';
import { type FakeJambonz, startFakeJambonz } from '../../support/fakes/jambonz-rest.ts';
import { type FakeTelnyx, startFakeTelnyx } from '../../support/fakes/telnyx-rest.ts';
import { type FakeTwilio, startFakeTwilio } from '../../support/fakes/twilio-rest.ts';

const TOKEN_SECRET = randomBytes(32).toString('hex');
const JAMBONZ_SECRET = `wh_secret_${randomBytes(8).toString('hex')}`;
const PUBLIC_BASE_URL = 'https://voice.example.com';
const NUMBER = '+14155550199';
const SIP = 'sip:alice@example.com';
const silent = { info() {}, warn() {}, error() {}, debug() {} };

/** A pino logger whose lines the test can read. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { log, lines };
}

const noLog = pino({ level: 'silent' });

function session(over: Partial<TransferSession> & Pick<TransferSession, 'protocol'>): TransferSession {
  return { callId: randomUUID(), agentId: 'agent-1', call: { params: {} }, ...over };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
}

describe('call transfer per provider', () => {
  let twilio: FakeTwilio;
  let jambonz: FakeJambonz;
  let telnyx: FakeTelnyx;
  let config: TransferConfig;

  beforeAll(() => {
    twilio = startFakeTwilio();
    jambonz = startFakeJambonz();
    telnyx = startFakeTelnyx();
    config = {
      TWILIO_ACCOUNT_SID: twilio.accountSid,
      // Comma-separated while rotating: the first one authenticates REST calls.
      TWILIO_AUTH_TOKEN: `${twilio.authToken},old-token-being-rotated-out`,
      TWILIO_API_BASE_URL: twilio.url,
      JAMBONZ_ACCOUNT_SID: jambonz.accountSid,
      JAMBONZ_API_KEY: jambonz.apiKey,
      JAMBONZ_API_BASE_URL: jambonz.url,
      TELNYX_API_KEY: telnyx.apiKey,
      TELNYX_API_BASE_URL: telnyx.url,
    };
  });
  afterAll(() => {
    twilio.stop();
    jambonz.stop();
    telnyx.stop();
  });

  /** A live Twilio call the fake knows (an answered inbound call). */
  function liveTwilioCall(): string {
    const sid = `CA${randomBytes(16).toString('hex')}`;
    twilio.calls.set(sid, { sid, status: 'in-progress', params: new URLSearchParams(), updates: [] });
    return sid;
  }

  function liveJambonzCall(): string {
    const sid = randomUUID();
    jambonz.calls.set(sid, { sid, status: 'trying', request: {}, updates: [] });
    return sid;
  }

  describe('Twilio', () => {
    it('redirects the call to <Dial> a number: exact path, Basic auth, TwiML', async () => {
      const callSid = liveTwilioCall();
      const before = twilio.requests.length;
      await createTransfer(
        config,
        noLog,
        PUBLIC_BASE_URL,
        TOKEN_SECRET,
      )(session({ protocol: 'twilio', callId: callSid }), NUMBER);
      const sent = twilio.requests.slice(before);
      expect(sent).toHaveLength(1);
      expect(sent[0].method).toBe('POST');
      expect(sent[0].path).toBe(`/2010-04-01/Accounts/${twilio.accountSid}/Calls/${callSid}.json`);
      expect(sent[0].headers.authorization).toBe(`Basic ${btoa(`${twilio.accountSid}:${twilio.authToken}`)}`);
      expect([...sent[0].form]).toEqual([['Twiml', `<Response><Dial>${NUMBER}</Dial></Response>`]]);
      expect(twilio.calls.get(callSid)?.updates).toHaveLength(1);
    });

    it('dials a SIP URI with <Sip>, XML-escaped', async () => {
      const callSid = liveTwilioCall();
      const uri = 'sip:alice@example.com;transport=tls&x=1';
      await createTransfer(
        config,
        noLog,
        PUBLIC_BASE_URL,
        TOKEN_SECRET,
      )(session({ protocol: 'twilio', callId: callSid }), uri);
      expect(twilio.calls.get(callSid)?.updates[0].get('Twiml')).toBe(
        '<Response><Dial><Sip>sip:alice@example.com;transport=tls&amp;x=1</Sip></Dial></Response>',
      );
    });

    it("finds an outbound call's CallSid in its stream token, even long after the token expired", async () => {
      const callSid = liveTwilioCall();
      const callId = randomUUID();
      const anHourAgo = Math.floor(Date.now() / 1000) - 3600;
      const token = mintToken(
        TOKEN_SECRET,
        { kind: 'stream', sub: callId, agentId: 'agent-1', providerCallId: callSid },
        300,
        anHourAgo,
      );
      await createTransfer(
        config,
        noLog,
        PUBLIC_BASE_URL,
        TOKEN_SECRET,
      )(session({ protocol: 'twilio', callId, call: { params: { token } } }), NUMBER);
      expect(twilio.calls.get(callSid)?.updates).toHaveLength(1);
      // A token signed with another secret is not believed: our call id is used, unknown to Twilio.
      const forged = mintToken(
        randomBytes(32).toString('hex'),
        { kind: 'stream', sub: callId, agentId: 'agent-1', providerCallId: callSid },
        300,
      );
      const err = await rejection(
        createTransfer(
          config,
          noLog,
          PUBLIC_BASE_URL,
          TOKEN_SECRET,
        )(session({ protocol: 'twilio', callId, call: { params: { token: forged } } }), NUMBER),
      );
      expect(err).toBeInstanceOf(ProviderError);
      expect((err as ProviderError).status).toBe(404);
      expect(twilio.calls.get(callSid)?.updates).toHaveLength(1);
    });

    it("prefers the session's providerCallId", async () => {
      const callSid = liveTwilioCall();
      await createTransfer(
        config,
        noLog,
        PUBLIC_BASE_URL,
        TOKEN_SECRET,
      )(session({ protocol: 'twilio', callId: randomUUID(), providerCallId: callSid }), SIP);
      expect(twilio.calls.get(callSid)?.updates[0].get('Twiml')).toBe(
        `<Response><Dial><Sip>${SIP}</Sip></Dial></Response>`,
      );
    });
  });

  describe('Jambonz', () => {
    /** Posts to the transfer hook as Jambonz would: signed JSON body with the call's sid. */
    async function fetchHook(
      hookUrl: string,
      body: Record<string, unknown>,
      over: { secret?: string; nowSec?: number } = {},
    ) {
      const text = JSON.stringify(body);
      const req = new Request(hookUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'jambonz-signature': signJambonz(
            over.secret ?? JAMBONZ_SECRET,
            text,
            over.nowSec ?? Math.floor(Date.now() / 1000),
          ),
        },
        body: text,
      });
      return jambonzTransferHook(req, {
        tokenSecrets: [TOKEN_SECRET],
        secrets: [JAMBONZ_SECRET],
        verify: true,
        log: noLog,
      });
    }

    async function transferAndGetHook(to: string): Promise<{ callSid: string; hookUrl: string }> {
      const callSid = liveJambonzCall();
      const before = jambonz.requests.length;
      await createTransfer(
        config,
        noLog,
        PUBLIC_BASE_URL,
        TOKEN_SECRET,
      )(session({ protocol: 'jambonz', callId: callSid }), to);
      const sent = jambonz.requests.slice(before);
      expect(sent).toHaveLength(1);
      expect(sent[0].method).toBe('PUT');
      expect(sent[0].path).toBe(`/v1/Accounts/${jambonz.accountSid}/Calls/${callSid}`);
      expect(sent[0].headers.authorization).toBe(`Bearer ${jambonz.apiKey}`);
      const body = sent[0].body as { call_hook: { url: string; method: string } };
      expect(Object.keys(body)).toEqual(['call_hook']);
      expect(body.call_hook.method).toBe('POST');
      const hookUrl = new URL(body.call_hook.url);
      expect(`${hookUrl.origin}${hookUrl.pathname}`).toBe(`${PUBLIC_BASE_URL}/telephony/jambonz/transfer`);
      expect([...hookUrl.searchParams.keys()]).toEqual(['token']);
      // The destination travels only inside the signed token, never as its own parameter.
      expect(body.call_hook.url).not.toContain(encodeURIComponent(to));
      expect(jambonz.calls.get(callSid)?.updates).toEqual([body]);
      return { callSid, hookUrl: body.call_hook.url };
    }

    it('moves the call to the transfer hook, which answers a dial to the number', async () => {
      const { callSid, hookUrl } = await transferAndGetHook(NUMBER);
      const res = await fetchHook(hookUrl, { call_sid: callSid, direction: 'inbound' });
      expect(res.status).toBe(200);
      const verbs = (await res.json()) as unknown[];
      expect(verbs).toEqual([
        { verb: 'dial', answerOnBridge: true, target: [{ type: 'phone', number: NUMBER }] },
      ]);
      expect(() => validateJambonzVerbs(silent, verbs)).not.toThrow();
    });

    it('dials a SIP URI as a sip target', async () => {
      const { callSid, hookUrl } = await transferAndGetHook(SIP);
      const res = await fetchHook(hookUrl, { call_sid: callSid });
      expect(res.status).toBe(200);
      const verbs = (await res.json()) as unknown[];
      expect(verbs).toEqual([{ verb: 'dial', answerOnBridge: true, target: [{ type: 'sip', sipUri: SIP }] }]);
      expect(() => validateJambonzVerbs(silent, verbs)).not.toThrow();
    });

    it('refuses a forged, expired, misused or misdirected token with 403', async () => {
      const callSid = randomUUID();
      const hook = (token: string) =>
        `${PUBLIC_BASE_URL}/telephony/jambonz/transfer?token=${encodeURIComponent(token)}`;
      const claims = { callId: randomUUID(), agentId: 'agent-1', callSid, to: NUMBER };

      const valid = await fetchHook(hook(mintTransferToken(TOKEN_SECRET, claims)), { call_sid: callSid });
      expect(valid.status).toBe(200);

      const forged = await fetchHook(hook(mintTransferToken(randomBytes(32).toString('hex'), claims)), {
        call_sid: callSid,
      });
      expect(forged.status).toBe(403);
      expect(await forged.json()).toMatchObject({ error: { code: 'bad_token' } });

      const minted = Math.floor(Date.now() / 1000) - 120;
      const expired = await fetchHook(hook(mintTransferToken(TOKEN_SECRET, claims, minted)), {
        call_sid: callSid,
      });
      expect(expired.status).toBe(403);
      expect(await expired.json()).toMatchObject({ error: { message: 'transfer token rejected: expired' } });

      // A stream token (same secret, no transfer purpose) does not name a destination.
      const stream = mintToken(
        TOKEN_SECRET,
        { kind: 'stream', sub: callSid, agentId: 'agent-1', to: NUMBER },
        60,
      );
      expect((await fetchHook(hook(stream), { call_sid: callSid })).status).toBe(403);

      // Shaped like a transfer token but without its purpose: refused.
      const unmarked = mintToken(
        TOKEN_SECRET,
        { kind: 'stream', sub: `transfer:${claims.callId}`, agentId: 'agent-1', callSid, to: NUMBER },
        60,
      );
      expect((await fetchHook(hook(unmarked), { call_sid: callSid })).status).toBe(403);

      // Minted for another call: refused for this one.
      const other = await fetchHook(hook(mintTransferToken(TOKEN_SECRET, claims)), {
        call_sid: randomUUID(),
      });
      expect(other.status).toBe(403);

      const missing = await fetchHook(`${PUBLIC_BASE_URL}/telephony/jambonz/transfer`, { call_sid: callSid });
      expect(missing.status).toBe(403);
    });

    it('checks the Jambonz signature like the other Jambonz routes', async () => {
      const callSid = randomUUID();
      const token = mintTransferToken(TOKEN_SECRET, {
        callId: randomUUID(),
        agentId: 'agent-1',
        callSid,
        to: NUMBER,
      });
      const url = `${PUBLIC_BASE_URL}/telephony/jambonz/transfer?token=${encodeURIComponent(token)}`;
      const res = await fetchHook(url, { call_sid: callSid }, { secret: 'not-the-webhook-secret' });
      expect(res.status).toBe(403);
      expect(await res.json()).toMatchObject({ error: { code: 'bad_signature' } });
      const stale = await fetchHook(
        url,
        { call_sid: callSid },
        { nowSec: Math.floor(Date.now() / 1000) - 900 },
      );
      expect(stale.status).toBe(403);
    });
  });

  describe('Telnyx', () => {
    it('sends the Call Control transfer: exact path (colon kept), Bearer key, JSON body', async () => {
      const call = telnyx.addCall();
      for (const to of [NUMBER, SIP]) {
        const before = telnyx.requests.length;
        await createTransfer(
          config,
          noLog,
          PUBLIC_BASE_URL,
          TOKEN_SECRET,
        )(session({ protocol: 'telnyx', providerCallId: call.callControlId }), to);
        const sent = telnyx.requests.slice(before);
        expect(sent).toHaveLength(1);
        expect(sent[0].method).toBe('POST');
        expect(sent[0].rawPath).toBe(`/v2/calls/${call.callControlId}/actions/transfer`);
        expect(sent[0].headers.authorization).toBe(`Bearer ${telnyx.apiKey}`);
        expect(sent[0].headers['content-type']).toBe('application/json');
        expect(sent[0].rawBody).toBe(JSON.stringify({ to }));
      }
      expect(call.actions.map((a) => a.body.to)).toEqual([NUMBER, SIP]);
    });

    it("cannot transfer without the stream's call_control_id", async () => {
      const before = telnyx.requests.length;
      const err = await rejection(
        createTransfer(config, noLog, PUBLIC_BASE_URL, TOKEN_SECRET)(session({ protocol: 'telnyx' }), NUMBER),
      );
      expect(err).toBeInstanceOf(TransferError);
      expect((err as TransferError).code).toBe('unknown_call');
      expect(telnyx.requests.length).toBe(before);
    });

    it('hangs a Telnyx call up when its session ends on our side, not after a transfer', async () => {
      const hangup = createTelnyxHangup(config, noLog);
      const ended = telnyx.addCall();
      const before = telnyx.requests.length;
      await hangup(session({ protocol: 'telnyx', providerCallId: ended.callControlId }), 'agent_hangup');
      const sent = telnyx.requests.slice(before);
      expect(sent).toHaveLength(1);
      expect(sent[0].rawPath).toBe(`/v2/calls/${ended.callControlId}/actions/hangup`);
      expect(sent[0].headers.authorization).toBe(`Bearer ${telnyx.apiKey}`);
      expect(sent[0].rawBody).toBe('{}');
      expect(ended.status).toBe('ended');

      const kept = telnyx.addCall();
      const mark = telnyx.requests.length;
      for (const reason of ['transferred', 'provider_hangup'] as const) {
        await hangup(session({ protocol: 'telnyx', providerCallId: kept.callControlId }), reason);
      }
      // Other providers end their calls by closing the stream: nothing to do for them.
      await hangup(session({ protocol: 'twilio', providerCallId: kept.callControlId }), 'agent_hangup');
      expect(telnyx.requests.length).toBe(mark);
      expect(kept.status).toBe('active');
    });

    it('treats an already-ended call as done, and retries a 5xx', async () => {
      const client = new TelnyxRestClient({ apiKey: telnyx.apiKey, baseUrl: telnyx.url });
      const call = telnyx.addCall();
      expect(await client.hangup(call.callControlId)).toBe(true);
      expect(await client.hangup(call.callControlId)).toBe(false); // 422 90018
      expect(await client.hangup('v3:unknown-call')).toBe(false); // 404

      const { log, lines } = capturingLogger();
      const hangup = createTelnyxHangup(config, log, { retryDelaysMs: [0] });
      const flaky = telnyx.addCall();
      telnyx.fault({ status: 503, times: 1 });
      await hangup(session({ protocol: 'telnyx', providerCallId: flaky.callControlId }), 'idle_timeout');
      expect(flaky.status).toBe('ended');
      expect(lines.find((l) => l.msg === 'telnyx call hung up')).toMatchObject({ hungUp: true });

      // A refusal that will not change (bad key) is logged, never thrown.
      const wrongKey = createTelnyxHangup({ ...config, TELNYX_API_KEY: 'KEYwrong' }, log);
      const other = telnyx.addCall();
      await wrongKey(session({ protocol: 'telnyx', providerCallId: other.callControlId }), 'error');
      expect(other.status).toBe('active');
      expect(lines.find((l) => l.msg === 'telnyx hangup failed')).toMatchObject({ attempts: 1 });
    });

    it('surfaces Telnyx errors as ProviderError with its code', async () => {
      const client = new TelnyxRestClient({ apiKey: telnyx.apiKey, baseUrl: telnyx.url });
      const call = telnyx.addCall();
      await client.hangup(call.callControlId);
      const err = await rejection(client.transfer(call.callControlId, NUMBER));
      expect(err).toBeInstanceOf(ProviderError);
      expect(err).toMatchObject({ provider: 'telnyx', status: 422, code: '90018', retryable: false });
      const denied = await rejection(
        new TelnyxRestClient({ apiKey: 'KEYwrong', baseUrl: telnyx.url }).transfer(
          telnyx.addCall().callControlId,
          NUMBER,
        ),
      );
      expect(denied).toMatchObject({ provider: 'telnyx', status: 401, code: '10009' });
    });
  });

  describe('refusals before any provider request', () => {
    it('names the missing settings of each provider', async () => {
      const transfer = createTransfer(
        {
          ...config,
          TWILIO_AUTH_TOKEN: undefined,
          JAMBONZ_API_KEY: undefined,
          JAMBONZ_API_BASE_URL: undefined,
          TELNYX_API_KEY: undefined,
        },
        noLog,
        PUBLIC_BASE_URL,
        TOKEN_SECRET,
      );
      const counts = () => [twilio.requests.length, jambonz.requests.length, telnyx.requests.length];
      const before = counts();
      const cases = [
        ['twilio', /TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN; unset: TWILIO_AUTH_TOKEN$/],
        ['jambonz', /unset: JAMBONZ_API_BASE_URL, JAMBONZ_API_KEY$/],
        ['telnyx', /unset: TELNYX_API_KEY$/],
      ] as const;
      for (const [protocol, message] of cases) {
        const err = await rejection(transfer(session({ protocol, providerCallId: 'x' }), NUMBER));
        expect(err).toBeInstanceOf(TransferError);
        expect(err).toMatchObject({ code: 'not_configured', retryable: false });
        expect((err as Error).message).toMatch(message);
      }
      expect(counts()).toEqual(before);
    });

    it('warns once at boot when TELNYX_API_KEY is unset, then does nothing', async () => {
      const { log, lines } = capturingLogger();
      const hangup = createTelnyxHangup({ ...config, TELNYX_API_KEY: undefined }, log);
      const warnings = () => lines.filter((l) => String(l.msg).startsWith('TELNYX_API_KEY unset'));
      expect(warnings()).toHaveLength(1);
      const call = telnyx.addCall();
      const before = telnyx.requests.length;
      await hangup(session({ protocol: 'telnyx', providerCallId: call.callControlId }), 'agent_hangup');
      await hangup(session({ protocol: 'telnyx', providerCallId: call.callControlId }), 'error');
      expect(telnyx.requests.length).toBe(before);
      expect(warnings()).toHaveLength(1);
    });

    it('refuses native sessions and destinations that are neither E.164 nor SIP', async () => {
      const transfer = createTransfer(config, noLog, PUBLIC_BASE_URL, TOKEN_SECRET);
      const native = await rejection(transfer(session({ protocol: 'native' }), NUMBER));
      expect(native).toBeInstanceOf(TransferError);
      expect((native as Error).message).toBe('transfer is not possible on native sessions');
      const callSid = liveTwilioCall();
      for (const to of ['4155550199', '+0123', 'tel:+14155550199', 'sip:<evil>', `${NUMBER}\n`, '']) {
        const err = await rejection(transfer(session({ protocol: 'twilio', callId: callSid }), to));
        expect(err).toMatchObject({ code: 'invalid_target' });
      }
      expect(twilio.calls.get(callSid)?.updates).toHaveLength(0);
    });
  });
});
