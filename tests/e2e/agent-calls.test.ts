import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callNamespace, nativeCallId } from '../../core/realtime/native-call-id.ts';
import { keys } from '../../core/store/index.ts';
import { type Platform, startPlatform } from '../control/platform.ts';
import { type Backing, embedded, eventually, type Json, makeAccount } from '../control/support.ts';
import { nativeClient, startedCallId, streamRealtime } from '../support/media-clients.ts';
import { voicesAvailable } from '../support/voices.ts';

const API_KEY = 'sk_test_agent_calls_realtime_key';

if (!voicesAvailable.flite) console.warn('\n!!! flite not installed: agent call tests are SKIPPED\n');

describe.skipIf(!voicesAvailable.flite && process.env.CI !== 'true')(
  'calls to agents over real sockets',
  () => {
    let backing: Backing;
    let p: Platform;
    let key: string;

    beforeAll(async () => {
      backing = await embedded();
      p = await startPlatform(backing, { env: { REALTIME_API_KEY: API_KEY } });
      key = (await makeAccount(p.control, `agent-calls-${randomUUID()}`)).key;
    });
    afterAll(async () => {
      await p?.close();
      await backing?.close();
    });

    const timeline = async (callId: string) =>
      (await p.store.range(keys.callTimeline(callId))).map((e) => ({
        type: e.fields.type!,
        data: e.fields.data ? JSON.parse(e.fields.data) : {},
      }));

    /** Opens a native call, keeps sending silence until the server ends it, returns how it closed. */
    async function callUntilEnded(agentId: string, callId: string) {
      const client = await nativeClient({
        baseWsUrl: p.url.replace('http', 'ws'),
        callId,
        agentId,
        sampleRate: 16000,
        protocols: ['sipai.v1', `sipai.key.${API_KEY}`],
      });
      client.start();
      let closed: { code: number; reason: string } | null = null;
      void client.closed.then((c) => {
        closed = c;
      });
      while (closed === null) await streamRealtime(client, new Int16Array(3200));
      return { client, closed: closed as { code: number; reason: string } };
    }

    it('creates an agent whose provider has no key here, reports it not ready, and apologises to its callers', async () => {
      const created = await p.api('POST', '/v1/agents', {
        key,
        body: { name: 'Needs a language model', brain: 'llm', prompt: 'You are a helpful agent.' },
      });
      expect(created.status).toBe(201);
      expect(created.body.ready).toBe(false);
      expect(created.body.warnings).toContain('llm openai: OPENAI_API_KEY is not set');

      const clientCallId = `web-${randomUUID()}`;
      const { client, closed } = await callUntilEnded(created.body.id, clientCallId);
      const callId = await startedCallId(client, clientCallId);
      // Not a silent 1008: the call was answered, an apology was spoken, and it ended normally.
      expect(closed.code).toBe(1000);
      const audio = client.heard.audio.flatMap((a) => Array.from(a.pcm));
      const rms = Math.sqrt(audio.reduce((sum, s) => sum + s * s, 0) / Math.max(1, audio.length));
      expect(audio.length / 16000).toBeGreaterThan(2);
      expect(rms).toBeGreaterThan(300);
      const events = await timeline(callId);
      const unavailable = events.find((e) => e.type === 'agent.unavailable');
      expect(unavailable?.data.reasons.join(' ')).toMatch(/OPENAI_API_KEY is not set/);
      expect(events.find((e) => e.type === 'agent.said')?.data.text).toMatch(
        /^I'm sorry, this line can't take calls/,
      );
      expect(events.at(-1)?.type).toBe('call.ended');

      // The call record says why.
      const record: Json = await eventually(
        async () => {
          const res = await p.api('GET', `/v1/calls/${callId}`, { key });
          return res.status === 200 && res.body.endReason ? res.body : undefined;
        },
        30_000,
        'the call record',
      );
      expect(record.timeline.map((e: Json) => e.type)).toContain('agent.unavailable');
      expect(record.transcript.find((t: Json) => t.role === 'agent')?.text).toMatch(/^I'm sorry/);
    }, 60_000);

    it('greets a campaign contact by the variables control left for the call', async () => {
      const created = await p.api('POST', '/v1/agents', {
        key,
        body: { name: 'Reminder', greeting: 'Hello {{name}}, this is your reminder.', intents: [] },
      });
      expect(created.status).toBe(201);
      const clientCallId = `cal_${randomUUID().replaceAll('-', '')}`;
      // A native call's id is the client's, namespaced (here by the API key it connects with).
      const callId = nativeCallId(callNamespace({ apiKey: API_KEY }), clientCallId);
      await p.store.set(keys.callContext(callId), JSON.stringify({ variables: { name: 'Ada' } }), 60_000);
      const client = await nativeClient({
        baseWsUrl: p.url.replace('http', 'ws'),
        callId: clientCallId,
        agentId: created.body.id,
        sampleRate: 16000,
        protocols: ['sipai.v1', `sipai.key.${API_KEY}`],
      });
      client.start();
      const said = async () => (await timeline(callId)).find((e) => e.type === 'agent.said');
      const silence = new Int16Array(3200);
      while (!(await said())) await streamRealtime(client, silence);
      expect((await said())!.data.text).toBe('Hello Ada, this is your reminder.');
      const started = (await timeline(callId)).find((e) => e.type === 'call.started');
      expect(started?.data.direction).toBe('outbound');
      client.stop();
      await client.closed;
    }, 60_000);
  },
);
