import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { agentKey, campaignKey } from '../../core/capacity/call-capacity.ts';
import { createLogger } from '../../core/observability/index.ts';
import { Timeline } from '../../core/session/timeline.ts';
import { keys } from '../../core/store/index.ts';
import { computeTwilioSignature } from '../../core/telephony/signatures/index.ts';
import { type FakeTwilio, startFakeTwilio } from '../support/fakes/twilio-rest.ts';
import { jambonzClient } from '../support/media-clients.ts';
import {
  answerJambonzCall,
  driveJambonzCalls,
  type Platform,
  reportJambonzStatus,
  startPlatform,
} from './platform.ts';
import {
  type ApiClient,
  apiClient,
  type Backing,
  eventually,
  type Json,
  makeAccount,
  makeControl,
} from './support.ts';

const silent = createLogger({ level: 'silent', service: 'test' });

/** Numbers unique to this run: the suffix keeps suites from colliding. */
let numberSeq = Math.floor(Math.random() * 1e6);
const nextNumber = () => `+1555${String(numberSeq++ % 1e7).padStart(7, '0')}`;

/** What core writes for one session: the call's record, then its timeline (core/session/timeline.ts). */
async function coreCall(
  p: Platform,
  o: {
    callId: string;
    agentId: string;
    from?: string;
    to?: string;
    endpointingMs?: number[];
    /** Events core writes as the conversation goes (`transcript.final`, `agent.said`, …). */
    words?: [type: string, data: Record<string, unknown>][];
    end?: 'stream_stopped' | 'error' | null;
  },
): Promise<void> {
  await p.store.set(
    keys.call(o.callId),
    JSON.stringify({
      provider: 'jambonz',
      agentId: o.agentId,
      from: o.from ?? '+15083084809',
      to: o.to ?? '+15085710011',
      admittedAt: new Date().toISOString(),
    }),
  );
  const timeline = new Timeline(p.store, silent, {
    callId: o.callId,
    agentId: o.agentId,
    protocol: 'jambonz',
  });
  timeline.append('call.started', { protocol: 'jambonz', direction: 'inbound', sampleRate: 8000 });
  (o.endpointingMs ?? []).forEach((ms, i) => {
    timeline.append('user.speech_started');
    timeline.append('turn.completed', { turn: i + 1, speechMs: 900, endpointingMs: ms });
    timeline.append('agent.speaking', { ms: 700 });
  });
  for (const [type, data] of o.words ?? []) timeline.append(type, data);
  if (o.end !== null)
    timeline.append('call.ended', { reason: o.end ?? 'stream_stopped', durationMs: 1234, turns: 0 });
  if (!(await timeline.flush())) throw new Error('timeline did not flush');
}

/**
 * Calls and campaigns against each backing, with a real core in the same process and a fake
 * Jambonz (and Twilio) REST server: the recorder turning core's stream into calls, lists and
 * filters and pages, tenancy, outbound calls with their leases, live commands, campaigns.
 */
export function runCallsContract(makeBacking: () => Promise<Backing>) {
  let backing: Backing;
  let p: Platform;
  let twilio: FakeTwilio;
  let api: ApiClient;
  let keyA: string;
  let keyB: string;
  let agentA: Json;
  let agentA2: Json;
  let agentB: Json;

  beforeAll(async () => {
    backing = await makeBacking();
    twilio = startFakeTwilio();
    p = await startPlatform(backing, {
      env: {
        TWILIO_ACCOUNT_SID: twilio.accountSid,
        TWILIO_AUTH_TOKEN: twilio.authToken,
        TWILIO_API_BASE_URL: twilio.url,
      },
      control: { workers: { recorder: { blockMs: 50 }, campaigns: { tickMs: 10, refreshMs: 200 } } },
    });
    api = p.api;
    const a = await makeAccount(p.control, 'A');
    const b = await makeAccount(p.control, 'B');
    keyA = a.key;
    keyB = b.key;
    const agent = async (key: string, body: Json) => {
      const res = await api('POST', '/v1/agents', { key, body });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      return res.body;
    };
    agentA = await agent(keyA, { name: 'A front desk', brain: 'echo' });
    agentA2 = await agent(keyA, { name: 'A sales', brain: 'echo', maxConcurrentCalls: 1 });
    agentB = await agent(keyB, { name: 'B desk', brain: 'echo' });
  });

  afterAll(async () => {
    await p?.close();
    twilio?.stop();
    await backing?.close();
  });

  // A test that fails mid-call must not hand its live session or its leases to the next one
  // (agentA2 allows one call at a time): end what is still live, free every call's slots.
  afterEach(async () => {
    if (!p) return;
    for (const session of [...p.core.media.sessions.values()]) session.close('server_shutdown');
    const placed = await backing.sql<{ id: string }[]>`select id from calls where direction = 'outbound'`;
    await Promise.all(placed.map(({ id }) => p.core.capacity.release(id)));
  });

  const getCall = async (id: string, key = keyA) => api('GET', `/v1/calls/${id}`, { key });

  const waitForCall = (id: string, done: (call: Json) => boolean, what: string) =>
    eventually(
      async () => {
        const res = await getCall(id);
        return res.status === 200 && done(res.body) ? res.body : undefined;
      },
      10_000,
      what,
    );

  describe('calls recorded from core’s event stream', () => {
    it('turns a session’s events into a call with its timeline, transcript and latency summary', async () => {
      const callId = `in-${crypto.randomUUID()}`;
      await coreCall(p, { callId, agentId: agentA.id, from: '+15550001111', endpointingMs: [400, 900, 500] });
      const call = await waitForCall(callId, (c) => c.status === 'completed', 'recorded call');
      expect(call).toMatchObject({
        id: callId,
        provider: 'jambonz',
        agentId: agentA.id,
        campaignId: null,
        direction: 'inbound',
        from: '+15550001111',
        to: '+15085710011',
        status: 'completed',
        endReason: 'stream_stopped',
        transcript: [],
        recordingUrl: null,
      });
      expect(call.answeredAt).toBeTypeOf('string');
      expect(call.endedAt).toBeTypeOf('string');
      // Steps only the call's own stream carries (speech start, agent speaking) are there too.
      expect(call.timeline.map((e: Json) => e.type)).toEqual([
        'call.started',
        ...Array(3).fill(['user.speech_started', 'turn.completed', 'agent.speaking']).flat(),
        'call.ended',
      ]);
      expect(call.latency).toEqual({
        turns: 3,
        endpointingMs: { count: 3, p50: 500, p95: 900, max: 900, mean: 600 },
        sttMs: null,
        llmFirstTokenMs: null,
        ttsFirstAudioMs: null,
        turnMs: null,
      });
    });

    it('builds the transcript from what core records of both sides’ words', async () => {
      const callId = `words-${crypto.randomUUID()}`;
      await coreCall(p, {
        callId,
        agentId: agentA.id,
        words: [
          [
            'agent.said',
            {
              text: 'Hello, Bella Pizza.',
              interrupted: false,
              playedMs: 1200,
              totalMs: 1200,
              startMs: 0,
              endMs: 1200,
            },
          ],
          ['transcript.partial', { text: 'when' }],
          ['transcript.final', { text: 'when are you open', startMs: 0, endMs: 0 }],
          ['turn.latency', { turn: 1, endpointingMs: 500, sttMs: 30, ttsFirstAudioMs: 50, turnMs: 90 }],
          ['dtmf', { digit: '1' }],
        ],
      });

      const call = await waitForCall(callId, (c) => c.status === 'completed', 'recorded call');
      expect(call.transcript.map((e: Json) => [e.role, e.text, e.source ?? null, e.startMs])).toEqual([
        ['agent', 'Hello, Bella Pizza.', null, 0],
        ['user', 'when are you open', 'speech', 0],
        ['user', '1', 'dtmf', expect.any(Number)],
      ]);
      expect(call.latency).toMatchObject({
        turns: 1,
        sttMs: { count: 1, p50: 30 },
        turnMs: { count: 1, p50: 90 },
      });
    });

    it('lists newest first, pages with a cursor, filters, and keeps accounts apart', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 12; i++) {
        const callId = `page-${i}-${crypto.randomUUID()}`;
        ids.push(callId);
        await coreCall(p, {
          callId,
          agentId: i % 3 === 0 ? agentA2.id : agentA.id,
          end: i % 4 === 1 ? 'error' : i % 4 === 2 ? null : 'stream_stopped',
        });
      }
      const bCall = `b-${crypto.randomUUID()}`;
      await coreCall(p, { callId: bCall, agentId: agentB.id });
      await eventually(
        async () => (await getCall(bCall, keyB)).body?.status === 'completed',
        10_000,
        'B call',
      );
      for (const id of ids) await waitForCall(id, (c) => c.status !== 'queued', `call ${id}`);

      const all = await api('GET', '/v1/calls?limit=100', { key: keyA });
      expect(all.status).toBe(200);
      const listed: Json[] = all.body.data;
      expect(listed.map((c) => c.id)).toEqual(expect.arrayContaining(ids));
      expect(listed.map((c) => c.id)).not.toContain(bCall);
      const sorted = [...listed].sort((x, y) =>
        x.startedAt === y.startedAt ? (x.id < y.id ? 1 : -1) : x.startedAt < y.startedAt ? 1 : -1,
      );
      expect(listed.map((c) => c.id)).toEqual(sorted.map((c) => c.id));

      const paged: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res = await api('GET', `/v1/calls?limit=5${cursor ? `&cursor=${cursor}` : ''}`, { key: keyA });
        expect(res.status).toBe(200);
        expect(res.body.data.length).toBeLessThanOrEqual(5);
        paged.push(...res.body.data.map((c: Json) => c.id));
        cursor = res.body.nextCursor;
        pages++;
      } while (cursor && pages < 50);
      expect(paged).toEqual(listed.map((c) => c.id));

      const byStatus = async (status: string) =>
        (await api('GET', `/v1/calls?limit=100&status=${status}`, { key: keyA })).body.data.map(
          (c: Json) => c.id,
        );
      const failed = ids.filter((_, i) => i % 4 === 1);
      const live = ids.filter((_, i) => i % 4 === 2);
      expect((await byStatus('failed')).filter((id: string) => ids.includes(id)).sort()).toEqual(
        failed.sort(),
      );
      expect((await byStatus('in-progress')).filter((id: string) => ids.includes(id)).sort()).toEqual(
        live.sort(),
      );

      const byAgent = await api('GET', `/v1/calls?limit=100&agentId=${agentA2.id}`, { key: keyA });
      expect(byAgent.body.data.map((c: Json) => c.id).sort()).toEqual(
        ids.filter((_, i) => i % 3 === 0).sort(),
      );
      const byAgentOfB = await api('GET', `/v1/calls?limit=100&agentId=${agentB.id}`, { key: keyA });
      expect(byAgentOfB.body.data).toEqual([]);
      const inbound = await api('GET', '/v1/calls?limit=100&direction=inbound', { key: keyA });
      expect(inbound.body.data.map((c: Json) => c.id)).toEqual(expect.arrayContaining(ids));
      expect(inbound.body.data.every((c: Json) => c.direction === 'inbound')).toBe(true);

      // A time range: [since, until) around the middle calls.
      const pageCalls = listed.filter((c) => ids.includes(c.id));
      const times = [...new Set(pageCalls.map((c) => c.startedAt))].sort();
      const since = times[Math.floor(times.length / 3)]!;
      let until = times[Math.floor((2 * times.length) / 3)]!;
      // Calls recorded within the same millisecond share a start time: keep the range non-empty.
      if (until <= since) until = new Date(Date.parse(since) + 1).toISOString();
      const ranged = await api(
        'GET',
        `/v1/calls?limit=100&since=${encodeURIComponent(since)}&until=${encodeURIComponent(until)}`,
        { key: keyA },
      );
      expect(ranged.status).toBe(200);
      const expected = listed.filter((c) => c.startedAt >= since && c.startedAt < until).map((c) => c.id);
      expect(expected.length).toBeGreaterThan(0);
      expect(ranged.body.data.map((c: Json) => c.id)).toEqual(expected);

      expect((await api('GET', '/v1/calls?status=ringing-ish', { key: keyA })).status).toBe(422);
      const badCursor = await api('GET', '/v1/calls?cursor=bm90LWEtY3Vyc29y', { key: keyA });
      expect(badCursor.status).toBe(422);
      expect(badCursor.body.error.details[0].field).toBe('cursor');
      expect((await api('GET', '/v1/calls?since=yesterday', { key: keyA })).status).toBe(422);
      expect((await api('GET', '/v1/calls', {})).status).toBe(401);

      // B sees its own call, and A's calls do not exist for B.
      const bList = await api('GET', '/v1/calls?limit=100', { key: keyB });
      expect(bList.body.data.map((c: Json) => c.id)).toEqual([bCall]);
      expect((await getCall(ids[0]!, keyB)).status).toBe(404);
      expect((await getCall(bCall, keyA)).status).toBe(404);
      const hangupOther = await api('POST', `/v1/calls/${ids[2]}/hangup`, { key: keyB, body: {} });
      expect(hangupOther.status).toBe(404);
    });
  });

  describe('outbound calls', () => {
    it('places a Jambonz call under its leases; core admits, streams and releases it under the same id', async () => {
      const to = nextNumber();
      const agentLeases = () => p.store.leaseCount(agentKey(agentA2.id));
      const globalBefore = await p.store.leaseCount('global');
      const res = await api('POST', '/v1/calls', {
        key: keyA,
        body: { agentId: agentA2.id, to, from: '+14155550100', provider: 'jambonz' },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      const call = res.body;
      expect(call).toMatchObject({
        id: expect.stringMatching(/^cal_[0-9a-z]{26}$/),
        provider: 'jambonz',
        agentId: agentA2.id,
        direction: 'outbound',
        from: '+14155550100',
        to,
        status: 'queued',
      });
      const placed = p.jambonz.calls.get(call.providerCallId)!;
      expect(placed.request).toMatchObject({
        from: '+14155550100',
        to: { type: 'phone', number: to },
        call_hook: { url: `${p.url}/telephony/jambonz/call` },
        call_status_hook: { url: `${p.url}/telephony/jambonz/status` },
        tag: { callId: call.id, agentId: agentA2.id },
      });
      expect(await agentLeases()).toBe(1);
      expect(await p.store.leaseCount('global')).toBe(globalBefore + 1);

      // Answered: core admits the call under our id, so it holds one slot, not two.
      const verbs = await answerJambonzCall(placed);
      expect(verbs[0]).toMatchObject({ verb: 'listen' });
      expect(await agentLeases()).toBe(1);
      expect(await p.store.leaseCount('global')).toBe(globalBefore + 1);

      // The provider opens the media stream under its own call id; the session is ours.
      const token = (verbs[0]!.metadata as { token: string }).token;
      const media = await jambonzClient({
        baseWsUrl: p.url.replace('http', 'ws'),
        callId: placed.sid,
        token,
      });
      media.start();
      await eventually(() => p.core.media.sessions.has(call.id), 5_000, 'session under our call id');

      // A live command through the API reaches the session, which ends the call.
      const hangup = await api('POST', `/v1/calls/${call.id}/hangup`, {
        key: keyA,
        body: { reason: 'test over' },
      });
      expect(hangup.status, JSON.stringify(hangup.body)).toBe(202);
      expect(hangup.body).toEqual({ callId: call.id, command: 'hangup', delivered: true });
      expect((await media.closed).code).toBe(1000);
      await eventually(async () => (await agentLeases()) === 0, 5_000, 'leases released');
      await reportJambonzStatus(placed, 'completed');

      // call.ended already completes the call; the provider's status lands after it.
      const ended = await waitForCall(
        call.id,
        (c) => c.status === 'completed' && c.timeline.some((e: Json) => e.type === 'call.status'),
        'ended outbound call with its provider status',
      );
      expect(ended).toMatchObject({
        endReason: 'command',
        direction: 'outbound',
        providerCallId: placed.sid,
      });
      const types = ended.timeline.map((e: Json) => e.type);
      expect(types).toEqual(expect.arrayContaining(['call.started', 'command', 'call.ended', 'call.status']));
      expect(await p.store.leaseCount('global')).toBe(globalBefore);
      const again = await api('POST', `/v1/calls/${call.id}/hangup`, { key: keyA, body: {} });
      expect(again.status).toBe(409);
      expect(again.body.error.code).toBe('call_not_live');
    });

    it('refuses with 429 and a clear body when a limit is full, dialling nothing; frees the slot on the status callback', async () => {
      const body = { agentId: agentA2.id, to: nextNumber(), from: '+14155550100', provider: 'jambonz' };
      const first = await api('POST', '/v1/calls', { key: keyA, body });
      expect(first.status).toBe(201);
      const creates = p.jambonz.requests.filter((r) => r.method === 'POST').length;
      const second = await api('POST', '/v1/calls', { key: keyA, body: { ...body, to: nextNumber() } });
      expect(second.status).toBe(429);
      expect(second.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(second.body.error).toMatchObject({
        code: 'at_capacity',
        details: { scope: 'agent', count: 1, limit: 1 },
      });
      expect(second.body.error.message).toContain('agent limit of 1');
      expect(p.jambonz.requests.filter((r) => r.method === 'POST').length).toBe(creates);

      // Never answered: the provider's status callback frees the slot, and the call says why.
      await reportJambonzStatus(p.jambonz.calls.get(first.body.providerCallId)!, 'no-answer');
      expect(await p.store.leaseCount(agentKey(agentA2.id))).toBe(0);
      await waitForCall(
        first.body.id,
        (c) => c.status === 'no-answer' && c.endReason === 'no-answer',
        'no-answer',
      );
      const third = await api('POST', '/v1/calls', { key: keyA, body: { ...body, to: nextNumber() } });
      expect(third.status).toBe(201);
      await reportJambonzStatus(p.jambonz.calls.get(third.body.providerCallId)!, 'busy');
      await waitForCall(third.body.id, (c) => c.status === 'busy', 'busy');
    });

    it('counts calls against their campaign’s own limit', async () => {
      const campaign = await api('POST', '/v1/campaigns', {
        key: keyA,
        body: {
          name: 'limit 1',
          agentId: agentA.id,
          provider: 'jambonz',
          callerId: '+14155550100',
          timeZone: 'UTC',
          callsPerSecond: 1,
          maxConcurrentCalls: 1,
        },
      });
      expect(campaign.status).toBe(201);
      const body = {
        agentId: agentA.id,
        from: '+14155550100',
        provider: 'jambonz',
        campaignId: campaign.body.id,
      };
      const first = await api('POST', '/v1/calls', { key: keyA, body: { ...body, to: nextNumber() } });
      expect(first.status).toBe(201);
      expect(first.body.campaignId).toBe(campaign.body.id);
      expect(await p.store.leaseCount(campaignKey(campaign.body.id))).toBe(1);
      const second = await api('POST', '/v1/calls', { key: keyA, body: { ...body, to: nextNumber() } });
      expect(second.body.error).toMatchObject({
        code: 'at_capacity',
        details: { scope: 'campaign', count: 1, limit: 1 },
      });
      await reportJambonzStatus(p.jambonz.calls.get(first.body.providerCallId)!, 'failed');
      expect(await p.store.leaseCount(campaignKey(campaign.body.id))).toBe(0);
      const otherAccount = await api('POST', '/v1/calls', {
        key: keyB,
        body: { ...body, agentId: agentB.id, to: nextNumber() },
      });
      expect(otherAccount.status).toBe(422);
      expect(otherAccount.body.error.details[0].field).toBe('campaignId');
    });

    it('answers a provider refusal with 502 and its code, gives the leases back and keeps the attempt', async () => {
      p.jambonz.fault({ status: 400, body: { msg: 'missing or invalid to property' } });
      try {
        const res = await api('POST', '/v1/calls', {
          key: keyA,
          body: { agentId: agentA2.id, to: nextNumber(), from: '+14155550100', provider: 'jambonz' },
        });
        expect(res.status).toBe(502);
        expect(res.body.error).toMatchObject({
          code: 'provider_error',
          details: { provider: 'jambonz', status: 400, retryable: false },
        });
        expect(res.body.error.message).toContain('missing or invalid to property');
      } finally {
        p.jambonz.fault(null);
      }
      expect(await p.store.leaseCount(agentKey(agentA2.id))).toBe(0);
      const failed = await api('GET', `/v1/calls?status=failed&agentId=${agentA2.id}`, { key: keyA });
      expect(failed.body.data[0]).toMatchObject({
        direction: 'outbound',
        endReason: 'provider_error: jambonz 400',
      });
    });

    it('places Twilio calls with our ids in the signed webhook URLs; the status callback frees the slot', async () => {
      const to = nextNumber();
      const res = await api('POST', '/v1/calls', {
        key: keyA,
        body: { agentId: agentA2.id, to, from: '+14155550100', provider: 'twilio', timeoutSec: 20 },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body.providerCallId).toMatch(/^CA/);
      const form = twilio.calls.get(res.body.providerCallId)!.params;
      const voiceUrl = new URL(form.get('Url')!);
      expect(`${voiceUrl.origin}${voiceUrl.pathname}`).toBe(`${p.url}/telephony/twilio/voice`);
      expect(Object.fromEntries(voiceUrl.searchParams)).toEqual({ callId: res.body.id, agentId: agentA2.id });
      expect(form.get('Timeout')).toBe('20');
      expect(form.getAll('StatusCallbackEvent')).toEqual(['initiated', 'ringing', 'answered', 'completed']);
      expect(await p.store.leaseCount(agentKey(agentA2.id))).toBe(1);

      const statusUrl = form.get('StatusCallback')!;
      const params = { CallSid: res.body.providerCallId, CallStatus: 'busy', To: to, From: '+14155550100' };
      const status = await fetch(statusUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-twilio-signature': computeTwilioSignature(statusUrl, params, twilio.authToken),
        },
        body: new URLSearchParams(params).toString(),
      });
      expect(status.status).toBe(204);
      expect(await p.store.leaseCount(agentKey(agentA2.id))).toBe(0);
      await waitForCall(res.body.id, (c) => c.status === 'busy' && c.provider === 'twilio', 'twilio busy');
    });

    it('says which settings are missing for a provider this deployment cannot use (503)', async () => {
      const bare = makeControl(backing, { REALTIME_WS_SECRET: 'x'.repeat(16) }, p.store, {
        workers: { recorder: false, campaigns: false },
      });
      const res = await apiClient(bare)('POST', '/v1/calls', {
        key: keyA,
        body: { agentId: agentA.id, to: nextNumber(), from: '+14155550100', provider: 'twilio' },
      });
      expect(res.status).toBe(503);
      expect(res.body.error).toMatchObject({
        code: 'provider_not_configured',
        details: { provider: 'twilio', missing: ['TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN'] },
      });
    });

    it('rejects bodies that name no agent of the account, or bad numbers, naming the field', async () => {
      const base = { agentId: agentA.id, to: nextNumber(), from: '+14155550100', provider: 'jambonz' };
      const other = await api('POST', '/v1/calls', { key: keyA, body: { ...base, agentId: agentB.id } });
      expect(other.status).toBe(422);
      expect(other.body.error.details[0].field).toBe('agentId');
      const badTo = await api('POST', '/v1/calls', { key: keyA, body: { ...base, to: '555-0100' } });
      expect(badTo.status).toBe(422);
      expect(badTo.body.error.details[0].field).toBe('to');
      const extra = await api('POST', '/v1/calls', { key: keyA, body: { ...base, record: true } });
      expect(extra.status).toBe(422);
    });
  });

  describe('live commands', () => {
    it('publishes hangup, say and transfer to the call’s channel, 409 when nobody runs the call', async () => {
      const callId = `cmd-${crypto.randomUUID()}`;
      await coreCall(p, { callId, agentId: agentA.id, end: null });
      await waitForCall(callId, (c) => c.status === 'in-progress', 'live call');

      const notLive = await api('POST', `/v1/calls/${callId}/hangup`, { key: keyA, body: {} });
      expect(notLive.status).toBe(409);
      expect(notLive.body.error.code).toBe('call_not_live');

      const received: string[] = [];
      const off = await p.store.subscribe(keys.callCommands(callId), (m) => received.push(m));
      try {
        const res = await api('POST', `/v1/calls/${callId}/hangup`, {
          key: keyA,
          body: { reason: 'operator' },
        });
        expect(res.status).toBe(202);
        await eventually(() => received.length === 1, 5_000, 'command delivered');
        expect(JSON.parse(received[0]!)).toEqual({ type: 'hangup', reason: 'operator' });
        const noBody = await api('POST', `/v1/calls/${callId}/hangup`, { key: keyA });
        expect(noBody.status, JSON.stringify(noBody.body)).toBe(202);
      } finally {
        await off();
      }

      const commands = [
        ['say', { text: 'One moment.' }, { type: 'say', text: 'One moment.' }],
        ['transfer', { to: '+14155550199' }, { type: 'transfer', to: '+14155550199' }],
        [
          'transfer',
          { to: 'sip:frontdesk@pbx.example.com' },
          { type: 'transfer', to: 'sip:frontdesk@pbx.example.com' },
        ],
      ] as const;
      for (const [command, body] of commands) {
        const res = await api('POST', `/v1/calls/${callId}/${command}`, { key: keyA, body });
        expect(res.status, JSON.stringify(res.body)).toBe(409);
        expect(res.body.error.code).toBe('call_not_live');
      }
      const delivered: string[] = [];
      const offAgain = await p.store.subscribe(keys.callCommands(callId), (m) => delivered.push(m));
      try {
        for (const [command, body] of commands) {
          const res = await api('POST', `/v1/calls/${callId}/${command}`, { key: keyA, body });
          expect(res.status, JSON.stringify(res.body)).toBe(202);
          expect(res.body).toEqual({ callId, command, delivered: true });
          expect((await api('POST', `/v1/calls/${callId}/${command}`, { key: keyB, body })).status).toBe(404);
        }
        await eventually(() => delivered.length === commands.length, 5_000, 'commands delivered');
        expect(delivered.map((m) => JSON.parse(m))).toEqual(commands.map(([, , published]) => published));
      } finally {
        await offAgain();
      }
      for (const [command, body, field] of [
        ['transfer', { to: 'bob' }, 'to'],
        ['transfer', { to: '555-0100' }, 'to'],
        ['transfer', {}, 'to'],
        ['say', { text: '' }, 'text'],
        ['say', { text: 'hi', voice: 'rms' }, 'voice'],
      ] as const) {
        const bad = await api('POST', `/v1/calls/${callId}/${command}`, { key: keyA, body });
        expect(bad.status, JSON.stringify(body)).toBe(422);
        expect(bad.body.error.details[0].field).toBe(field);
      }
      const badJson = await api('POST', `/v1/calls/${callId}/hangup`, { key: keyA, rawBody: '{"reason":' });
      expect(badJson.status).toBe(400);
    });
  });

  describe('campaigns', () => {
    const settings = () => ({
      name: 'Renewals',
      agentId: agentA.id,
      provider: 'jambonz',
      callerId: '+14155550100',
      timeZone: 'America/New_York',
      callsPerSecond: 20,
      maxConcurrentCalls: 3,
    });

    /** A schedule that is closed now, wherever the test runs: every day but today (UTC). */
    const closedToday = () => {
      const days = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
      const today = days[new Date().getUTCDay()];
      return { daysOfWeek: days.filter((d) => d !== today), startTime: '00:00', endTime: '23:59' };
    };

    it('creates with contacts, takes more as JSON or CSV, and validates what a schema cannot', async () => {
      const created = await api('POST', '/v1/campaigns', {
        key: keyA,
        body: {
          ...settings(),
          retry: { maxAttempts: 3, retryDelaySec: 60 },
          schedule: { daysOfWeek: ['mon', 'fri'], startTime: '09:00', endTime: '17:30' },
          contacts: [
            { phoneNumber: nextNumber(), variables: { firstName: 'Ada' } },
            { phoneNumber: nextNumber() },
          ],
        },
      });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      expect(created.body).toMatchObject({
        id: expect.stringMatching(/^cmp_[0-9a-z]{26}$/),
        status: 'draft',
        timeZone: 'America/New_York',
        retry: { maxAttempts: 3, retryDelaySec: 60 },
        progress: { total: 2, pending: 2, dialing: 0, completed: 0 },
      });
      const id = created.body.id;

      const csvNumbers = [nextNumber(), nextNumber()];
      const csv = await api('POST', `/v1/campaigns/${id}/contacts`, {
        key: keyA,
        rawBody: `phone_number,firstName,note\r\n${csvNumbers[0]},Grace,"likes ""tea"", mornings"\r\n${csvNumbers[1]},,\r\n`,
        headers: { 'content-type': 'text/csv' },
      });
      expect(csv.status, JSON.stringify(csv.body)).toBe(200);
      expect(csv.body).toMatchObject({ added: 2, progress: { total: 4, pending: 4 } });
      const json = await api('POST', `/v1/campaigns/${id}/contacts`, {
        key: keyA,
        body: { contacts: [{ phoneNumber: nextNumber() }] },
      });
      expect(json.body.added).toBe(1);
      const contacts = await api('GET', `/v1/campaigns/${id}/contacts?limit=3`, { key: keyA });
      expect(contacts.body.data.map((c: Json) => c.seq)).toEqual([1, 2, 3]);
      expect(contacts.body.data[0].variables).toEqual({ firstName: 'Ada' });
      expect(contacts.body.data[2]).toMatchObject({
        phoneNumber: csvNumbers[0],
        variables: { firstName: 'Grace', note: 'likes "tea", mornings' },
        status: 'pending',
        attempts: 0,
      });
      const rest = await api('GET', `/v1/campaigns/${id}/contacts?cursor=${contacts.body.nextCursor}`, {
        key: keyA,
      });
      expect(rest.body.data.map((c: Json) => c.seq)).toEqual([4, 5]);
      expect(rest.body.data[0].variables).toBeNull();

      const badLine = await api('POST', `/v1/campaigns/${id}/contacts`, {
        key: keyA,
        rawBody: `phone\n${nextNumber()}\n555-1234\n`,
        headers: { 'content-type': 'text/csv' },
      });
      expect(badLine.status).toBe(422);
      expect(badLine.body.error.message).toContain('CSV line 3');
      const noPhone = await api('POST', `/v1/campaigns/${id}/contacts`, {
        key: keyA,
        rawBody: 'name\nAda\n',
        headers: { 'content-type': 'text/csv' },
      });
      expect(noPhone.status).toBe(422);
      expect(noPhone.body.error.message).toContain('no phone column');
      const dup = await api('POST', `/v1/campaigns/${id}/contacts`, {
        key: keyA,
        body: { contacts: [{ phoneNumber: nextNumber() }, { phoneNumber: csvNumbers[1] }] },
      });
      expect(dup.status).toBe(422);
      expect(dup.body.error.details[0].field).toBe('contacts.1.phoneNumber');

      const invalid = async (patch: Json, field: string) => {
        const res = await api('POST', '/v1/campaigns', { key: keyA, body: { ...settings(), ...patch } });
        expect(res.status, JSON.stringify(res.body)).toBe(422);
        expect(res.body.error.details[0].field).toBe(field);
      };
      await invalid({ timeZone: 'Mars/Olympus_Mons' }, 'timeZone');
      await invalid({ agentId: agentB.id }, 'agentId');
      await invalid({ callsPerSecond: 0 }, 'callsPerSecond');
      await invalid(
        { schedule: { daysOfWeek: ['mon'], startTime: '9am', endTime: '17:00' } },
        'schedule.startTime',
      );
      await invalid(
        { schedule: { daysOfWeek: ['mon'], startTime: '09:00', endTime: '09:00' } },
        'schedule.endTime',
      );
      const twice = nextNumber();
      await invalid({ contacts: [{ phoneNumber: twice }, { phoneNumber: twice }] }, 'contacts.1.phoneNumber');
    });

    it('starts, pauses, resumes and cancels; dials nothing outside its window; 409 for a move its state forbids', async () => {
      const placedBefore = p.jambonz.calls.size;
      const created = await api('POST', '/v1/campaigns', {
        key: keyA,
        body: {
          ...settings(),
          schedule: closedToday(),
          timeZone: 'UTC',
          contacts: [{ phoneNumber: nextNumber() }, { phoneNumber: nextNumber() }],
        },
      });
      const id = created.body.id;
      const act = (action: string, key = keyA) => api('POST', `/v1/campaigns/${id}/${action}`, { key });
      const pauseDraft = await act('pause');
      expect(pauseDraft.status).toBe(409);
      expect(pauseDraft.body.error).toMatchObject({
        code: 'invalid_state',
        details: { status: 'draft', action: 'pause' },
      });
      expect((await act('start', keyB)).status).toBe(404);
      const started = await act('start');
      expect(started.status).toBe(200);
      expect(started.body).toMatchObject({ status: 'running', startedAt: expect.any(String) });
      await Bun.sleep(500);
      expect(p.jambonz.calls.size).toBe(placedBefore);
      expect((await act('pause')).body.status).toBe('paused');
      expect((await act('pause')).status).toBe(409);
      expect((await act('resume')).body.status).toBe('running');
      const canceled = await act('cancel');
      expect(canceled.body).toMatchObject({
        status: 'canceled',
        endedAt: expect.any(String),
        progress: { total: 2, canceled: 2, pending: 0 },
      });
      expect((await act('start')).status).toBe(409);
      const late = await api('POST', `/v1/campaigns/${id}/contacts`, {
        key: keyA,
        body: { contacts: [{ phoneNumber: nextNumber() }] },
      });
      expect(late.status).toBe(409);

      const empty = await api('POST', '/v1/campaigns', { key: keyA, body: settings() });
      const noContacts = await api('POST', `/v1/campaigns/${empty.body.id}/start`, { key: keyA });
      expect(noContacts.status).toBe(409);
      expect(noContacts.body.error.code).toBe('no_contacts');
    });

    it('keeps accounts apart', async () => {
      const created = await api('POST', '/v1/campaigns', { key: keyA, body: settings() });
      const id = created.body.id;
      expect((await api('GET', `/v1/campaigns/${id}`, { key: keyA })).status).toBe(200);
      expect((await api('GET', `/v1/campaigns/${id}`, { key: keyB })).status).toBe(404);
      expect((await api('GET', `/v1/campaigns/${id}/contacts`, { key: keyB })).status).toBe(404);
      const add = await api('POST', `/v1/campaigns/${id}/contacts`, {
        key: keyB,
        body: { contacts: [{ phoneNumber: nextNumber() }] },
      });
      expect(add.status).toBe(404);
      expect((await api('POST', `/v1/campaigns/${id}/cancel`, { key: keyB })).status).toBe(404);
      const listA = await api('GET', '/v1/campaigns?limit=100', { key: keyA });
      expect(listA.body.data.map((c: Json) => c.id)).toContain(id);
      const listB = await api('GET', '/v1/campaigns?limit=100', { key: keyB });
      expect(listB.body.data.map((c: Json) => c.id)).not.toContain(id);
    });

    it('never redials a contact whose claim a crashed runner left unconfirmed: it becomes unknown', async () => {
      const numbers = [nextNumber(), nextNumber(), nextNumber()];
      const created = await api('POST', '/v1/campaigns', {
        key: keyA,
        body: { ...settings(), contacts: numbers.map((phoneNumber) => ({ phoneNumber })) },
      });
      const id = created.body.id;
      // What a runner that died between claiming and hearing from the provider leaves behind.
      await backing.sql`
        update campaign_contacts set status = 'dialing', attempts = 1, call_id = 'cal_lost',
          claimed_by = 'dead-runner', claimed_at = now() - interval '2 minutes'
        where campaign_id = ${id} and seq = 2`;
      const driver = driveJambonzCalls(p.jambonz, {
        ringMs: () => 5,
        talkMs: () => 10,
        outcome: () => 'completed',
      });
      try {
        expect((await api('POST', `/v1/campaigns/${id}/start`, { key: keyA })).status).toBe(200);
        const done = await eventually(
          async () => {
            const c = (await api('GET', `/v1/campaigns/${id}`, { key: keyA })).body;
            return c.status === 'completed' ? c : undefined;
          },
          10_000,
          'campaign completed',
        );
        expect(done.progress).toMatchObject({ total: 3, completed: 2, unknown: 1, dialing: 0, pending: 0 });
        const contacts = (await api('GET', `/v1/campaigns/${id}/contacts`, { key: keyA })).body.data;
        expect(contacts[1]).toMatchObject({
          status: 'unknown',
          attempts: 1,
          lastOutcome: 'dial_unconfirmed',
        });
        const dialled = [...p.jambonz.calls.values()].map((c) => (c.request.to as { number: string }).number);
        expect(dialled).toEqual(expect.arrayContaining([numbers[0], numbers[2]]));
        expect(dialled).not.toContain(numbers[1]);
      } finally {
        await driver.stop();
      }
    });

    it('runs to completion: retries busy and no-answer, fails the rest, and the counts add up', async () => {
      const numbers = Array.from({ length: 12 }, () => nextNumber());
      const [alwaysBusy, noAnswerOnce, fails] = numbers;
      const attempts = new Map<string, number>();
      const driver = driveJambonzCalls(p.jambonz, {
        ringMs: () => 5 + Math.random() * 20,
        talkMs: () => 20 + Math.random() * 60,
        outcome: (call) => {
          const to = (call.request.to as { number: string }).number;
          const n = (attempts.get(to) ?? 0) + 1;
          attempts.set(to, n);
          if (to === alwaysBusy) return 'busy';
          if (to === noAnswerOnce) return n === 1 ? 'no-answer' : 'completed';
          if (to === fails) return 'failed';
          return 'completed';
        },
      });
      try {
        const created = await api('POST', '/v1/campaigns', {
          key: keyA,
          body: {
            ...settings(),
            retry: { maxAttempts: 2, retryDelaySec: 0 },
            contacts: numbers.map((phoneNumber) => ({ phoneNumber })),
          },
        });
        const id = created.body.id;
        let maxLive = 0;
        const sampler = setInterval(async () => {
          maxLive = Math.max(maxLive, await p.store.leaseCount(campaignKey(id)));
        }, 5);
        expect((await api('POST', `/v1/campaigns/${id}/start`, { key: keyA })).status).toBe(200);
        const done = await eventually(
          async () => {
            const c = (await api('GET', `/v1/campaigns/${id}`, { key: keyA })).body;
            return c.status === 'completed' ? c : undefined;
          },
          20_000,
          'campaign completed',
        );
        clearInterval(sampler);
        expect(driver.errors).toEqual([]);
        expect(done.progress).toEqual({
          total: 12,
          pending: 0,
          dialing: 0,
          retrying: 0,
          completed: 10,
          failed: 2,
          unknown: 0,
          canceled: 0,
        });
        expect(maxLive).toBeLessThanOrEqual(3);
        const contacts = (await api('GET', `/v1/campaigns/${id}/contacts?limit=100`, { key: keyA })).body
          .data;
        const byNumber = new Map(contacts.map((c: Json) => [c.phoneNumber, c]));
        expect(byNumber.get(alwaysBusy)).toMatchObject({
          status: 'failed',
          attempts: 2,
          lastOutcome: 'busy',
        });
        expect(byNumber.get(noAnswerOnce)).toMatchObject({ status: 'completed', attempts: 2 });
        expect(byNumber.get(fails)).toMatchObject({ status: 'failed', attempts: 1, lastOutcome: 'failed' });
        for (const c of contacts) expect(attempts.get(c.phoneNumber), c.phoneNumber).toBe(c.attempts);
        const calls = await api('GET', `/v1/calls?limit=100&campaignId=${id}`, { key: keyA });
        expect(calls.body.data).toHaveLength(14);
        expect(calls.body.data.every((c: Json) => c.direction === 'outbound' && c.campaignId === id)).toBe(
          true,
        );
      } finally {
        await driver.stop();
      }
    });
  });
}
