import twilio from 'twilio';
import { afterEach, describe, expect, it } from 'vitest';
import { ProviderError, TwilioRestClient } from '../../../core/telephony/index.ts';
import { type FakeTwilio, startFakeTwilio } from '../../support/fakes/twilio-rest.ts';

const TWIML =
  '<Response><Connect><Stream url="wss://voice.example.com/telephony/twilio/stream"/></Connect></Response>';

describe('TwilioRestClient', () => {
  let fake: FakeTwilio;
  const client = (over: Partial<ConstructorParameters<typeof TwilioRestClient>[0]> = {}) =>
    new TwilioRestClient({
      baseUrl: fake.url,
      accountSid: fake.accountSid,
      authToken: fake.authToken,
      timeoutMs: 2_000,
      ...over,
    });
  const rejection = async (p: Promise<unknown>): Promise<ProviderError> => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ProviderError);
    return err as ProviderError;
  };

  afterEach(() => fake?.stop());

  it('creates a call: Basic auth, form body with one StatusCallbackEvent per event, 201 sid', async () => {
    fake = startFakeTwilio();
    const sid = await client().createCall({
      to: '+15085551212',
      from: '+15085550100',
      url: 'https://voice.example.com/telephony/twilio/voice?callId=c-1',
      statusCallback: 'https://voice.example.com/telephony/twilio/status?callId=c-1',
      statusCallbackEvent: ['initiated', 'ringing', 'answered', 'completed'],
      machineDetection: 'Enable',
      timeoutSec: 25,
    });
    expect(sid).toMatch(/^CA[0-9a-f]{32}$/);
    const [req] = fake.requests;
    expect(req!.method).toBe('POST');
    expect(req!.path).toBe(`/2010-04-01/Accounts/${fake.accountSid}/Calls.json`);
    expect(req!.headers.authorization).toBe(`Basic ${btoa(`${fake.accountSid}:${fake.authToken}`)}`);
    expect(req!.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect([...req!.form]).toEqual([
      ['To', '+15085551212'],
      ['From', '+15085550100'],
      ['Url', 'https://voice.example.com/telephony/twilio/voice?callId=c-1'],
      ['StatusCallback', 'https://voice.example.com/telephony/twilio/status?callId=c-1'],
      ['StatusCallbackMethod', 'POST'],
      ['StatusCallbackEvent', 'initiated'],
      ['StatusCallbackEvent', 'ringing'],
      ['StatusCallbackEvent', 'answered'],
      ['StatusCallbackEvent', 'completed'],
      ['MachineDetection', 'Enable'],
      ['Timeout', '25'],
    ]);
  });

  it('sends the same fields the official twilio-node client sends for the same call', async () => {
    fake = startFakeTwilio();
    const params = {
      to: '+15085551212',
      from: '+15085550100',
      twiml: TWIML,
      statusCallback: 'https://voice.example.com/telephony/twilio/status',
      statusCallbackEvent: ['initiated', 'answered'] as ('initiated' | 'answered')[],
      timeoutSec: 40,
    };
    await client().createCall(params);
    const official = twilio(fake.accountSid, fake.authToken);
    official.api.baseUrl = fake.url;
    const created = await official.calls.create({
      to: params.to,
      from: params.from,
      twiml: params.twiml,
      statusCallback: params.statusCallback,
      statusCallbackMethod: 'POST',
      statusCallbackEvent: params.statusCallbackEvent,
      timeout: params.timeoutSec,
    });
    expect(created.sid).toMatch(/^CA/);
    const [ours, theirs] = fake.requests;
    const sorted = (f: URLSearchParams) =>
      [...f].sort(([a, x], [b, y]) => a.localeCompare(b) || x.localeCompare(y));
    expect(sorted(ours!.form)).toEqual(sorted(theirs!.form));
    expect(ours!.headers.authorization).toBe(theirs!.headers.authorization);
    expect(ours!.path).toBe(theirs!.path);
  });

  it("turns Twilio's JSON error into a ProviderError with its code", async () => {
    fake = startFakeTwilio();
    const err = await rejection(client().createCall({ to: '12', from: '+15085550100', twiml: TWIML }));
    expect(err).toMatchObject({
      provider: 'twilio',
      kind: 'http',
      status: 400,
      code: '21211',
      moreInfo: 'https://www.twilio.com/docs/errors/21211',
      retryable: false,
    });
    expect(err.message).toContain("Invalid 'To' Phone Number");
  });

  it('reports bad credentials as 20003, not retryable', async () => {
    fake = startFakeTwilio();
    const err = await rejection(
      client({ authToken: 'wrong' }).createCall({ to: '+15085551212', from: '+15085550100', twiml: TWIML }),
    );
    expect(err).toMatchObject({ status: 401, code: '20003', retryable: false });
  });

  it.each([
    [429, 20429, true],
    [500, 20500, true],
    [503, 20503, true],
    [403, 20403, false],
  ])('classifies a %i answer (code %i, retryable: %s)', async (status, code, retryable) => {
    fake = startFakeTwilio();
    fake.fault({ status, code, message: 'induced' });
    const err = await rejection(
      client().createCall({ to: '+15085551212', from: '+15085550100', twiml: TWIML }),
    );
    expect(err).toMatchObject({ status, code: String(code), retryable });
  });

  it('gives up after timeoutMs on a server that never answers, as a retryable timeout', async () => {
    fake = startFakeTwilio();
    fake.fault('hang');
    const err = await rejection(
      client({ timeoutMs: 150 }).createCall({ to: '+15085551212', from: '+15085550100', twiml: TWIML }),
    );
    expect(err).toMatchObject({ kind: 'timeout', retryable: true });
  });

  it('hangs up with Status=completed on the call resource', async () => {
    fake = startFakeTwilio();
    const sid = await client().createCall({ to: '+15085551212', from: '+15085550100', twiml: TWIML });
    expect(await client().hangup(sid)).toBe(true);
    const req = fake.requests.at(-1)!;
    expect(req.path).toBe(`/2010-04-01/Accounts/${fake.accountSid}/Calls/${sid}.json`);
    expect([...req.form]).toEqual([['Status', 'completed']]);
    expect(fake.calls.get(sid)!.status).toBe('completed');
    expect(await client().hangup('CA00000000000000000000000000000000')).toBe(false);
  });

  it('redirects a live call with inline TwiML (transfer), and refuses once it is over', async () => {
    fake = startFakeTwilio();
    const sid = await client().createCall({ to: '+15085551212', from: '+15085550100', twiml: TWIML });
    fake.calls.get(sid)!.status = 'in-progress';
    const transfer = '<Response><Dial>+15085559999</Dial></Response>';
    await client().redirect(sid, transfer);
    expect([...fake.requests.at(-1)!.form]).toEqual([['Twiml', transfer]]);
    await client().hangup(sid);
    const err = await rejection(client().redirect(sid, transfer));
    expect(err).toMatchObject({ status: 400, code: '21220', retryable: false });
  });
});
