import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CallCapacity } from '../../../core/capacity/index.ts';
import { MemoryStore } from '../../../core/store/index.ts';
import {
  JambonzRestClient,
  jambonzDialer,
  type OutboundDialer,
  originateCall,
  ProviderError,
  TwilioRestClient,
  twilioDialer,
} from '../../../core/telephony/index.ts';
import { type FakeJambonz, startFakeJambonz } from '../../support/fakes/jambonz-rest.ts';
import { type FakeTwilio, startFakeTwilio } from '../../support/fakes/twilio-rest.ts';

const SPEECH = {
  synthesizer: { vendor: 'google', language: 'en-US', voice: 'en-US-Standard-C' },
  recognizer: { vendor: 'google', language: 'en-US' },
};
const CALL = { agentId: 'agent-1', campaignId: 'camp-1', to: '+15085551212', from: '+15085550100' };

describe('originateCall', () => {
  let store: MemoryStore;
  let capacity: CallCapacity;
  let jambonz: FakeJambonz;
  let twilioFake: FakeTwilio;
  let dialers: Record<'jambonz' | 'twilio', OutboundDialer>;

  beforeEach(() => {
    store = new MemoryStore();
    capacity = new CallCapacity(store, { globalMax: 10, perCampaignMax: 2, ttlMs: 60_000 });
    jambonz = startFakeJambonz();
    twilioFake = startFakeTwilio();
    dialers = {
      jambonz: jambonzDialer(
        new JambonzRestClient({
          baseUrl: jambonz.url,
          accountSid: jambonz.accountSid,
          apiKey: jambonz.apiKey,
          timeoutMs: 200,
        }),
        {
          callHookUrl: (c) => `https://voice.example.com/telephony/jambonz/call?callId=${c.callId}`,
          statusHookUrl: () => 'https://voice.example.com/telephony/jambonz/status',
          speech: SPEECH,
        },
      ),
      twilio: twilioDialer(
        new TwilioRestClient({
          baseUrl: twilioFake.url,
          accountSid: twilioFake.accountSid,
          authToken: twilioFake.authToken,
          timeoutMs: 200,
        }),
        {
          instructions: (c) => ({
            url: `https://voice.example.com/telephony/twilio/voice?callId=${c.callId}`,
          }),
          statusCallback: (c) => `https://voice.example.com/telephony/twilio/status?callId=${c.callId}`,
          statusCallbackEvent: ['initiated', 'answered', 'completed'],
        },
      ),
    };
  });
  afterEach(async () => {
    jambonz.stop();
    twilioFake.stop();
    await store.close();
  });

  const held = async () => await capacity.counts({ campaigns: ['camp-1'], agents: ['agent-1'] });
  const providerRequests = (p: 'jambonz' | 'twilio') =>
    p === 'jambonz' ? jambonz.requests : twilioFake.requests;
  const fault = (p: 'jambonz' | 'twilio', f: { status: number } | 'hang') =>
    p === 'jambonz' ? jambonz.fault(f) : twilioFake.fault(f);

  describe.each(['jambonz', 'twilio'] as const)('through %s', (provider) => {
    it('takes the leases, places the call and keeps the leases for the live call', async () => {
      const result = await originateCall({
        ...CALL,
        callId: 'out-1',
        capacity,
        dialer: dialers[provider],
        agentMax: 3,
      });
      expect(result).toMatchObject({ ok: true, provider });
      const providerCallId = (result as { providerCallId: string }).providerCallId;
      if (provider === 'jambonz') {
        expect(jambonz.calls.get(providerCallId)!.request.tag).toEqual({
          callId: 'out-1',
          agentId: 'agent-1',
          campaignId: 'camp-1',
        });
      } else {
        expect(twilioFake.calls.get(providerCallId)!.params.get('Url')).toBe(
          'https://voice.example.com/telephony/twilio/voice?callId=out-1',
        );
      }
      const counts = await held();
      expect(counts.global.count).toBe(1);
      expect(counts.campaigns['camp-1']!.count).toBe(1);
      expect(counts.agents['agent-1']!.count).toBe(1);
      expect(await capacity.release('out-1')).toBe(true);
    });

    it('never asks the provider when a limit is full', async () => {
      await originateCall({ ...CALL, callId: 'a', capacity, dialer: dialers[provider] });
      await originateCall({ ...CALL, callId: 'b', capacity, dialer: dialers[provider] });
      const before = providerRequests(provider).length;
      const result = await originateCall({ ...CALL, callId: 'c', capacity, dialer: dialers[provider] });
      expect(result).toEqual({
        ok: false,
        code: 'at_capacity',
        scope: 'campaign',
        count: 2,
        limit: 2,
        retryable: true,
      });
      expect(providerRequests(provider).length).toBe(before);
      expect((await held()).global.count).toBe(2);
    });

    it.each([
      [500, true],
      [503, true],
      [400, false],
    ])('gives the leases back when the provider answers %i (retryable: %s)', async (status, retryable) => {
      fault(provider, { status });
      const result = await originateCall({ ...CALL, callId: 'refused', capacity, dialer: dialers[provider] });
      expect(result).toMatchObject({ ok: false, code: 'provider_error', retryable });
      const error = (result as { error: ProviderError }).error;
      expect(error).toBeInstanceOf(ProviderError);
      expect(error).toMatchObject({ provider, status, retryable });
      const counts = await held();
      expect([
        counts.global.count,
        counts.campaigns['camp-1']!.count,
        counts.agents['agent-1']!.count,
      ]).toEqual([0, 0, 0]);
      expect(await capacity.release('refused')).toBe(false);
    });

    it('gives the leases back when the provider does not answer in time', async () => {
      fault(provider, 'hang');
      const result = await originateCall({ ...CALL, callId: 'slow', capacity, dialer: dialers[provider] });
      expect(result).toMatchObject({ ok: false, code: 'provider_error', retryable: true });
      expect((result as { error: ProviderError }).error.kind).toBe('timeout');
      expect((await held()).global.count).toBe(0);
    });

    it('gives the leases back when a refused call was invalid at the provider', async () => {
      const result = await originateCall({
        ...CALL,
        to: 'not-a-number',
        callId: 'bad',
        capacity,
        dialer: dialers[provider],
      });
      if (provider === 'jambonz') {
        // Jambonz accepts any string as a phone target; the fake, like the server, places it.
        expect(result.ok).toBe(true);
        await capacity.release('bad');
      } else {
        expect(result).toMatchObject({ ok: false, code: 'provider_error', retryable: false });
        expect((result as { error: ProviderError }).error.code).toBe('21211');
      }
      expect((await held()).global.count).toBe(0);
    });
  });

  it('releases the leases and rethrows when a dialer fails with something other than a ProviderError', async () => {
    const broken: OutboundDialer = {
      provider: 'twilio',
      dial: async () => {
        throw new TypeError('bug in a dialer');
      },
    };
    await expect(originateCall({ ...CALL, callId: 'bug', capacity, dialer: broken })).rejects.toThrow(
      TypeError,
    );
    expect((await held()).global.count).toBe(0);
  });
});
