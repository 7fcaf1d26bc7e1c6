import { afterEach, describe, expect, it } from 'vitest';
import { JambonzRestClient, ProviderError } from '../../../core/telephony/index.ts';
import { type FakeJambonz, startFakeJambonz } from '../../support/fakes/jambonz-rest.ts';

const SPEECH = {
  synthesizer: { vendor: 'google', language: 'en-US', voice: 'en-US-Standard-C' },
  recognizer: { vendor: 'google', language: 'en-US' },
};

describe('JambonzRestClient', () => {
  let fake: FakeJambonz;
  const client = (over: Partial<ConstructorParameters<typeof JambonzRestClient>[0]> = {}) =>
    new JambonzRestClient({
      baseUrl: `${fake.url}/`,
      accountSid: fake.accountSid,
      apiKey: fake.apiKey,
      timeoutMs: 2_000,
      ...over,
    });

  afterEach(() => fake?.stop());

  const rejection = async (p: Promise<unknown>): Promise<ProviderError> => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ProviderError);
    return err as ProviderError;
  };

  it('creates a call with a call hook: Bearer key, JSON body in the documented shape, 201 sid', async () => {
    fake = startFakeJambonz();
    const sid = await client().createCall({
      from: '+15085550100',
      to: '+15085551212',
      callHookUrl: 'https://voice.example.com/telephony/jambonz/call?callId=c-1',
      statusHookUrl: 'https://voice.example.com/telephony/jambonz/status',
      speech: SPEECH,
      tag: { callId: 'c-1', agentId: 'a-1' },
      timeoutSec: 30,
    });
    expect(fake.calls.has(sid)).toBe(true);
    expect(fake.requests).toHaveLength(1);
    const [req] = fake.requests;
    expect(req!.method).toBe('POST');
    expect(req!.path).toBe(`/v1/Accounts/${fake.accountSid}/Calls`);
    expect(req!.headers.authorization).toBe(`Bearer ${fake.apiKey}`);
    expect(req!.headers['content-type']).toBe('application/json');
    expect(req!.body).toEqual({
      from: '+15085550100',
      to: { type: 'phone', number: '+15085551212' },
      call_hook: { url: 'https://voice.example.com/telephony/jambonz/call?callId=c-1', method: 'POST' },
      call_status_hook: { url: 'https://voice.example.com/telephony/jambonz/status', method: 'POST' },
      speech_synthesis_vendor: 'google',
      speech_synthesis_language: 'en-US',
      speech_synthesis_voice: 'en-US-Standard-C',
      speech_recognizer_vendor: 'google',
      speech_recognizer_language: 'en-US',
      timeout: 30,
      tag: { callId: 'c-1', agentId: 'a-1' },
    });
  });

  it('creates a call from an application sid without speech defaults', async () => {
    fake = startFakeJambonz({ applicationSids: ['app-1'] });
    const sid = await client().createCall({
      from: '+15085550100',
      to: '+15085551212',
      applicationSid: 'app-1',
    });
    expect(fake.calls.get(sid)!.request).toEqual({
      from: '+15085550100',
      to: { type: 'phone', number: '+15085551212' },
      application_sid: 'app-1',
    });
  });

  it('turns a 400 {msg} into a non-retryable ProviderError carrying the message', async () => {
    fake = startFakeJambonz();
    const err = await rejection(
      client().createCall({ from: '+15085550100', to: '+15085551212', applicationSid: 'unknown-app' }),
    );
    expect(err).toMatchObject({ provider: 'jambonz', kind: 'http', status: 400, retryable: false });
    expect(err.message).toContain('application_sid not found unknown-app');
  });

  it('reports a wrong API key as a non-retryable 401', async () => {
    fake = startFakeJambonz();
    const err = await rejection(client({ apiKey: 'wrong' }).hangup('whatever'));
    expect(err).toMatchObject({ status: 401, retryable: false });
  });

  it.each([
    [500, undefined, true],
    [503, { msg: 'overloaded' }, true],
    [429, { msg: 'slow down' }, true],
    [480, { msg: 'no available feature servers at this time' }, true],
    [422, { msg: 'unprocessable entity' }, false],
  ])('classifies a %i answer (retryable: %s)', async (status, body, retryable) => {
    fake = startFakeJambonz({ applicationSids: ['app-1'] });
    fake.fault(body === undefined ? { status } : { status, body });
    const err = await rejection(
      client().createCall({ from: '+15085550100', to: '+15085551212', applicationSid: 'app-1' }),
    );
    expect(err).toMatchObject({ provider: 'jambonz', kind: 'http', status, retryable });
    if (body) expect(err.message).toContain(body.msg);
  });

  it('gives up after timeoutMs on a server that never answers, as a retryable timeout', async () => {
    fake = startFakeJambonz({ applicationSids: ['app-1'] });
    fake.fault('hang');
    const started = performance.now();
    const err = await rejection(
      client({ timeoutMs: 150 }).createCall({ from: '+1', to: '+2', applicationSid: 'app-1' }),
    );
    // It gave up rather than hanging with the server: a bound, not a speed (the server never answers).
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(err).toMatchObject({ kind: 'timeout', status: undefined, retryable: true });
  });

  it('reports a refused connection as a retryable network error', async () => {
    fake = startFakeJambonz();
    const url = fake.url;
    fake.stop();
    const err = await rejection(
      new JambonzRestClient({ baseUrl: url, accountSid: 'a', apiKey: 'k', timeoutMs: 2_000 }).hangup('x'),
    );
    expect(err).toMatchObject({ kind: 'network', retryable: true });
  });

  describe('live calls', () => {
    const placeCall = () =>
      client().createCall({ from: '+15085550100', to: '+15085551212', applicationSid: 'app-1' });

    it.each([204, 202] as const)(
      'hangs up with PUT call_status=completed (update answered %i)',
      async (status) => {
        fake = startFakeJambonz({ applicationSids: ['app-1'], updateStatus: status });
        const sid = await placeCall();
        expect(await client().hangup(sid)).toBe(true);
        const put = fake.requests.at(-1)!;
        expect(put.method).toBe('PUT');
        expect(put.path).toBe(`/v1/Accounts/${fake.accountSid}/Calls/${sid}`);
        expect(put.headers.authorization).toBe(`Bearer ${fake.apiKey}`);
        expect(put.body).toEqual({ call_status: 'completed' });
        // The call is over: a second hang-up finds nothing and says so instead of throwing.
        expect(await client().hangup(sid)).toBe(false);
      },
    );

    it('redirects a live call to a new call hook (transfer)', async () => {
      fake = startFakeJambonz({ applicationSids: ['app-1'] });
      const sid = await placeCall();
      await client().redirect(sid, 'https://voice.example.com/telephony/jambonz/transfer?to=%2B15085559999');
      expect(fake.calls.get(sid)!.updates).toEqual([
        {
          call_hook: {
            url: 'https://voice.example.com/telephony/jambonz/transfer?to=%2B15085559999',
            method: 'POST',
          },
        },
      ]);
    });

    it('sends listen and mute operations as given', async () => {
      fake = startFakeJambonz({ applicationSids: ['app-1'] });
      const sid = await placeCall();
      await client().updateCall(sid, { listen_status: 'pause' });
      await client().updateCall(sid, { mute_status: 'mute' });
      expect(fake.calls.get(sid)!.updates).toEqual([{ listen_status: 'pause' }, { mute_status: 'mute' }]);
    });

    it('refuses to send two operations in one update, as the server would', async () => {
      fake = startFakeJambonz({ applicationSids: ['app-1'] });
      const sid = await placeCall();
      const before = fake.requests.length;
      await expect(
        client().updateCall(sid, { call_status: 'completed', mute_status: 'mute' } as never),
      ).rejects.toThrow(/exactly one operation/);
      expect(fake.requests.length).toBe(before);
    });

    it('reports an unknown call as a non-retryable 404 on redirect', async () => {
      fake = startFakeJambonz();
      const err = await rejection(client().redirect('no-such-call', 'https://voice.example.com/x'));
      expect(err).toMatchObject({ status: 404, retryable: false });
    });
  });
});
