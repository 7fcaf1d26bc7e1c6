import { createHmac } from 'node:crypto';
import twilio from 'twilio';
import { describe, expect, it } from 'vitest';
import { verifyJambonzRequest } from '../../core/telephony/signatures/jambonz.ts';
import { verifyTwilioRequest } from '../../core/telephony/signatures/twilio.ts';
import { evaluate, Metrics } from '../../perf/local/k6-local.ts';
import { type ApiAnswer, agentLifecycle } from '../../perf/scenarios/api.ts';
import {
  burstPlanFromEnv,
  classifyJambonzCall,
  classifyTwilioVoice,
  jambonzCallWebhook,
  streamFromTwiml,
  twilioStatusCallback,
  twilioVoiceWebhook,
  webhookThresholds,
} from '../../perf/scenarios/webhooks.ts';

const sha1 = (key: string, data: string) => createHmac('sha1', key).update(data, 'utf8').digest('base64');
const sha256 = (key: string, data: string) => createHmac('sha256', key).update(data, 'utf8').digest('hex');
const TARGET = { baseUrl: 'http://127.0.0.1:4321', signedBaseUrl: 'https://voice.example.com' };
const TOKEN = 'scenario-twilio-token';

describe('webhook scenario', () => {
  it('signs a Twilio voice webhook as Twilio does: core and the twilio package agree', () => {
    const req = twilioVoiceWebhook(TARGET, TOKEN, sha1, 'CA0123', 'agt_x y&z');
    expect(req.url).toBe(`${TARGET.baseUrl}/telephony/twilio/voice?agentId=agt_x%20y%26z`);
    const signedUrl = `${TARGET.signedBaseUrl}/telephony/twilio/voice?agentId=agt_x%20y%26z`;
    const params = new URLSearchParams(req.body);
    const signature = req.headers['x-twilio-signature'];
    expect(verifyTwilioRequest({ url: signedUrl, signature, authToken: TOKEN, params }).ok).toBe(true);
    expect(signature).toBe(twilio.getExpectedTwilioSignature(TOKEN, signedUrl, Object.fromEntries(params)));
    expect(verifyTwilioRequest({ url: signedUrl, signature, authToken: 'other', params }).ok).toBe(false);
  });

  it('signs the status callback over its own fields', () => {
    const req = twilioStatusCallback(TARGET, TOKEN, sha1, 'CA0123');
    const params = new URLSearchParams(req.body);
    expect(params.get('CallStatus')).toBe('completed');
    const url = `${TARGET.signedBaseUrl}/telephony/twilio/status`;
    const signature = req.headers['x-twilio-signature'];
    expect(verifyTwilioRequest({ url, signature, authToken: TOKEN, params }).ok).toBe(true);
  });

  it('signs a Jambonz call webhook that core verifies, and no other body', () => {
    const req = jambonzCallWebhook(TARGET, 'jambonz-secret', sha256, 'call-1', 'agt_1');
    const header = req.headers['jambonz-signature'];
    const rawBody = new TextEncoder().encode(req.body);
    expect(verifyJambonzRequest({ header, rawBody, secret: 'jambonz-secret' }).ok).toBe(true);
    const tampered = new TextEncoder().encode(req.body.replace('agt_1', 'agt_2'));
    expect(verifyJambonzRequest({ header, rawBody: tampered, secret: 'jambonz-secret' }).ok).toBe(false);
  });

  it('tells admitted, busy and failed Twilio answers apart', () => {
    const connect =
      '<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://h/telephony/twilio/stream">' +
      '<Parameter name="token" value="a.b&amp;c"/><Parameter name="agentId" value="echo"/></Stream></Connect></Response>';
    expect(classifyTwilioVoice(200, connect)).toBe('admitted');
    expect(streamFromTwiml(connect)).toEqual({
      url: 'wss://h/telephony/twilio/stream',
      token: 'a.b&c',
      agentId: 'echo',
    });
    expect(classifyTwilioVoice(200, '<Response><Reject reason="busy"/></Response>')).toBe('busy');
    expect(classifyTwilioVoice(200, '<Response><Reject reason="rejected"/></Response>')).toBe('error');
    expect(classifyTwilioVoice(500, connect)).toBe('error');
  });

  it('tells admitted, busy and failed Jambonz answers apart', () => {
    const listen = JSON.stringify([{ verb: 'listen', metadata: { token: 't', agentId: 'echo' } }]);
    expect(classifyJambonzCall(200, listen)).toBe('admitted');
    expect(classifyJambonzCall(200, '[{"verb":"sip:decline","status":503}]')).toBe('busy');
    expect(classifyJambonzCall(200, '[{"verb":"sip:decline","status":404}]')).toBe('error');
    expect(classifyJambonzCall(200, 'not json')).toBe('error');
    expect(classifyJambonzCall(503, listen)).toBe('error');
  });

  it('expects each round to admit exactly the limit and refuse the rest', () => {
    const plan = burstPlanFromEnv({ BURST_CALLS: '25', CAPACITY_LIMIT: '7', BURST_ROUNDS: '2' });
    const t = webhookThresholds(plan);
    expect(t.webhook_admitted).toEqual(['count==14']);
    expect(t.webhook_busy).toEqual(['count==36']);
    expect(() => burstPlanFromEnv({ BURST_HOLD_MS: '5000', BURST_ROUND_MS: '4000' })).toThrow(
      /BURST_HOLD_MS/,
    );
  });
});

describe('api scenario', () => {
  it('stops after a failed create, with nothing to read or delete', () => {
    const flow = agentLifecycle('run', 1);
    const first = flow.next();
    expect(first.done).toBe(false);
    expect(first.value).toMatchObject({ method: 'POST', path: '/v1/agents', expectStatus: 201 });
    const refused: ApiAnswer = { status: 429, body: '{"error":{"code":"rate_limited","message":"x"}}' };
    expect(!first.done && first.value.check(refused)).toBe(false);
    expect(flow.next(refused).done).toBe(true);
  });
});

describe('k6-style threshold evaluation (perf/local/k6-local.ts)', () => {
  it('computes p(95) as k6 does (interpolated) and compares with each operator', () => {
    const m = new Metrics();
    for (let v = 1; v <= 11; v++) m.trend('t', v * 10);
    m.rate('r', true);
    m.rate('r', false);
    m.count('c', 3);
    const verdicts = evaluate(
      { t: ['p(95)<106', 'p(95)<105', 'med==60', 'max<=110'], r: ['rate>=0.5', 'rate>0.5'], c: ['count==3'] },
      m,
    );
    expect(verdicts.map((v) => [v.expression, v.ok])).toEqual([
      ['p(95)<106', true],
      ['p(95)<105', false],
      ['med==60', true],
      ['max<=110', true],
      ['rate>=0.5', true],
      ['rate>0.5', false],
      ['count==3', true],
    ]);
    expect(verdicts[0]!.value).toBeCloseTo(105);
  });

  it('fails a threshold nothing was measured against, and refuses syntax it does not know', () => {
    const m = new Metrics();
    expect(evaluate({ never: ['p(95)<1'] }, m)[0]).toMatchObject({ ok: false, value: null });
    expect(() => evaluate({ t: ['p95 < 3'] }, m)).toThrow(/not one this runner understands/);
  });
});
