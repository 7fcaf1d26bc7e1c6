import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resetBreakers } from '../../core/agent/providers/llm/resilient.ts';
import { verifySignature } from '../../core/auth/standard-webhooks.ts';
import { keys } from '../../core/store/index.ts';
import { type Platform, startPlatform } from '../control/platform.ts';
import { type Backing, embedded, eventually, type Json, makeAccount } from '../control/support.ts';
import { type FakeDeepgram, type FakeWord, startFakeDeepgram } from '../fakes/deepgram.ts';
import { type FakeOpenAi, startFakeOpenAi } from '../fakes/openai.ts';
import { type MediaClient, nativeClient, streamRealtime } from '../support/media-clients.ts';
import { synthesize, voicesAvailable } from '../support/voices.ts';

const API_KEY = 'sk_test_llm_agent_realtime_key';
const WEBHOOK_SECRET = 'whsec_bGxtLWFnZW50LXRvb2wtc2lnbmluZy1zZWNyZXQ=';
const LONG_REPLY = [
  'Our menu has pizzas from the wood oven, fresh pasta every day, and salads.',
  'On weekdays we also serve a lunch special with a drink included.',
  'For dessert there is tiramisu, panna cotta and three kinds of gelato.',
];

if (!voicesAvailable.flite)
  console.warn('\n!!! flite not installed: llm agent end-to-end tests are SKIPPED\n');

/**
 * The `llm` brain end to end with fakes that speak the vendors' wire formats over real sockets:
 * Deepgram live STT (WebSocket), OpenAI chat completions (SSE) and speech (streamed PCM), and a
 * customer's tool endpoint that verifies the platform's signature. The caller is a real voice
 * (flite), so the Silero VAD and the endpointing run as on a call.
 */
describe.skipIf(!voicesAvailable.flite && process.env.CI !== 'true')(
  'the llm agent with vendor fakes',
  () => {
    let backing: Backing;
    let p: Platform;
    let key: string;
    let deepgram: FakeDeepgram;
    let openai: FakeOpenAi;
    let tool: ReturnType<typeof Bun.serve>;
    const toolCalls: { verified: boolean; body: Json }[] = [];

    beforeAll(async () => {
      deepgram = startFakeDeepgram();
      openai = startFakeOpenAi();
      tool = Bun.serve({
        port: 0,
        hostname: '127.0.0.1',
        async fetch(req) {
          const body = await req.text();
          const verified = verifySignature(WEBHOOK_SECRET, req.headers, body);
          toolCalls.push({ verified, body: JSON.parse(body) });
          return verified
            ? Response.json({ available: true, table: 12 })
            : new Response('no', { status: 401 });
        },
      });
      backing = await embedded();
      p = await startPlatform(backing, {
        env: {
          REALTIME_API_KEY: API_KEY,
          OPENAI_API_KEY: openai.apiKey!,
          OPENAI_BASE_URL: openai.baseUrl,
          DEEPGRAM_API_KEY: deepgram.apiKey,
          DEEPGRAM_BASE_URL: deepgram.url,
          WEBHOOK_SECRET,
        },
      });
      key = (await makeAccount(p.control, `llm-${randomUUID()}`)).key;
    });
    afterAll(async () => {
      await p?.close();
      await backing?.close();
      deepgram?.stop();
      openai?.stop();
      tool?.stop(true);
    });

    /** The server's id of a native call: clients' ids are namespaced (the `call.started` event says how). */
    const serverIds = new Map<string, MediaClient>();
    const serverId = (callId: string) => {
      const client = serverIds.get(callId);
      const started = client?.heard.other.find(
        (m) => (m as Json).t === 'event' && (m as Json).name === 'call.started',
      ) as Json | undefined;
      return (started?.data?.callId as string | undefined) ?? callId;
    };
    const timeline = async (callId: string) =>
      (await p.store.range(keys.callTimeline(serverId(callId)))).map((e) => ({
        type: e.fields.type!,
        data: e.fields.data ? JSON.parse(e.fields.data) : {},
      }));
    const said = async (callId: string) => (await timeline(callId)).filter((e) => e.type === 'agent.said');
    const chatRequests = () => openai.requests.filter((r) => r.path.endsWith('/chat/completions'));

    async function createAgent(body: Json) {
      const res = await p.api('POST', '/v1/agents', {
        key,
        body: { name: `LLM ${randomUUID()}`, brain: 'llm', ...body },
      });
      expect(res.status).toBe(201);
      return res.body;
    }

    async function connect(agentId: string, callId: string): Promise<MediaClient> {
      const client = await nativeClient({
        baseWsUrl: p.url.replace('http', 'ws'),
        callId,
        agentId,
        sampleRate: 16000,
        protocols: ['sipai.v1', `sipai.key.${API_KEY}`],
      });
      client.start();
      serverIds.set(callId, client);
      return client;
    }

    /** Silence, as a phone line sends it, until `done()` holds. */
    async function quietUntil(client: MediaClient, done: () => Promise<boolean>, what: string) {
      const silence = new Int16Array(3200);
      await eventually(
        async () => {
          if (await done()) return true;
          await streamRealtime(client, silence);
          return false;
        },
        60_000,
        what,
      );
    }

    /** The caller says `text`: Deepgram (the fake) will hear these words in the audio that follows. */
    async function say(client: MediaClient, text: string) {
      const conn = deepgram.connections.at(-1)!;
      const at = conn.audioSec + 0.35;
      const words: FakeWord[] = text
        .split(' ')
        .map((word, i) => ({ word, start: at + i * 0.2, end: at + i * 0.2 + 0.18 }));
      deepgram.words.push(...words);
      await streamRealtime(client, synthesize(text, { engine: 'flite', voice: 'slt', sampleRate: 16000 }));
    }

    it('holds a two-turn conversation whose second turn calls a signed customer tool and speaks its result, retrying a 500', async () => {
      resetBreakers();
      const agent = await createAgent({
        prompt: 'You take table bookings for Bella Pizza.',
        greeting: 'Hi, Bella Pizza.',
        tools: [
          {
            name: 'check_table',
            description: 'Checks whether a table is free at a time.',
            parameters: { type: 'object', properties: { time: { type: 'string' } }, required: ['time'] },
            webhookUrl: `http://127.0.0.1:${tool.port}/check`,
          },
        ],
      });
      expect(agent.ready).toBe(true);
      const callId = `web-${randomUUID()}`;
      const before = chatRequests().length;
      openai.chat(
        // Turn 1: the first attempt fails with a 500 and is retried.
        { status: 500 },
        {
          steps: [
            { text: 'Yes, we have tables tonight. ' },
            { text: 'What time?' },
            { finish: 'stop' },
            { done: true },
          ],
        },
        // Turn 2: a tool call, then the answer to its result.
        {
          steps: [
            { toolCall: { index: 0, id: 'call_1', name: 'check_table', arguments: '{"time":' } },
            { toolCall: { index: 0, arguments: '"19:30"}' } },
            { finish: 'tool_calls' },
            { done: true },
          ],
        },
        { steps: [{ text: 'Table twelve is free at half past seven.' }, { finish: 'stop' }, { done: true }] },
      );
      const client = await connect(agent.id, callId);
      await quietUntil(client, async () => (await said(callId)).length >= 1, 'the greeting');

      await say(client, 'do you have a table tonight');
      await quietUntil(client, async () => (await said(callId)).length >= 2, 'the first answer');
      await say(client, 'half past seven please');
      await quietUntil(client, async () => (await said(callId)).length >= 3, 'the second answer');

      const texts = (await said(callId)).map((e) => e.data.text);
      expect(texts).toEqual([
        'Hi, Bella Pizza.',
        'Yes, we have tables tonight. What time?',
        'Table twelve is free at half past seven.',
      ]);
      const requests = chatRequests().slice(before);
      // 500, retry, turn 2 with the tool call, then with its result.
      expect(requests).toHaveLength(4);
      const last = requests[3]!.body as Json;
      expect(last.messages[0].role).toBe('system');
      expect(last.messages.map((m: Json) => m.role)).toEqual([
        'system',
        'assistant',
        'user',
        'assistant',
        'user',
        'assistant',
        'tool',
      ]);
      expect(last.messages[2].content).toBe('do you have a table tonight');
      expect(last.messages[4].content).toBe('half past seven please');
      expect(JSON.parse(last.messages[6].content)).toEqual({ available: true, table: 12 });
      expect(toolCalls).toHaveLength(1);
      expect(toolCalls[0]).toMatchObject({
        verified: true,
        body: { tool: 'check_table', arguments: { time: '19:30' } },
      });
      const events = (await timeline(callId)).map((e) => e.type);
      expect(events).toContain('tool.called');
      expect(events).toContain('tool.result');
      expect(events).toContain('turn.latency');
      client.stop();
      await client.closed;
    }, 120_000);

    it('after a barge-in, sends the model only the words the caller heard', async () => {
      resetBreakers();
      const agent = await createAgent({ prompt: 'You are the front desk of Bella Pizza.', greeting: 'Hi.' });
      const callId = `web-${randomUUID()}`;
      const before = chatRequests().length;
      openai.chat(
        { steps: [...LONG_REPLY.map((text) => ({ text: `${text} ` })), { finish: 'stop' }, { done: true }] },
        { steps: [{ text: 'Sure, go ahead.' }, { finish: 'stop' }, { done: true }] },
      );
      const client = await connect(agent.id, callId);
      await quietUntil(client, async () => (await said(callId)).length >= 1, 'the greeting');
      // Each sentence of the long reply is 2 s of audio.
      openai.speech({ samples: 48_000 }, { samples: 48_000 }, { samples: 48_000 });
      await say(client, 'what is on the menu');
      // Let about 3 s of the 6 s reply play, then cut in.
      const heardFrom = client.heard.audio.length;
      await quietUntil(client, async () => client.heard.audio.length - heardFrom >= 150, 'the reply to play');
      await say(client, 'wait a moment');
      await quietUntil(
        client,
        async () => (await said(callId)).length >= 3,
        'the answer after the interruption',
      );

      const cut = (await said(callId))[1]!;
      expect(cut.data.interrupted).toBe(true);
      const full = LONG_REPLY.join(' ');
      expect(full.startsWith(cut.data.text)).toBe(true);
      expect(cut.data.text.length).toBeGreaterThan(10);
      expect(cut.data.text.length).toBeLessThan(full.length);
      const next = chatRequests().slice(before)[1]!.body as Json;
      const assistant = next.messages.filter((m: Json) => m.role === 'assistant').map((m: Json) => m.content);
      expect(assistant).toEqual(['Hi.', cut.data.text]);
      expect(JSON.stringify(next.messages)).not.toContain('three kinds of gelato');
      client.stop();
      await client.closed;
    }, 120_000);

    it('apologises and hangs up when the language model is down for good', async () => {
      resetBreakers();
      const agent = await createAgent({ prompt: 'You are a helpful agent.', greeting: 'Hello.' });
      const callId = `web-${randomUUID()}`;
      openai.chat({ status: 503 }, { status: 503 }, { status: 503 });
      const client = await connect(agent.id, callId);
      await quietUntil(client, async () => (await said(callId)).length >= 1, 'the greeting');
      await say(client, 'hello is anyone there');
      let closed: { code: number } | null = null;
      void client.closed.then((c) => {
        closed = c;
      });
      await quietUntil(client, async () => closed !== null, 'the call to end');
      const events = await timeline(callId);
      expect(events.find((e) => e.type === 'agent.error')?.data).toMatchObject({ retryable: true });
      expect((await said(callId)).at(-1)?.data.text).toMatch(/^I'm sorry, something went wrong on our side/);
      expect(events.at(-1)).toMatchObject({ type: 'call.ended', data: { reason: 'error' } });
    }, 120_000);

    it('puts a refused key on the call’s timeline as a clear error', async () => {
      resetBreakers();
      const agent = await createAgent({
        prompt: 'You are a helpful agent.',
        greeting: 'Hello.',
        llm: { provider: 'openai-compatible', options: { baseUrl: openai.baseUrl, apiKey: 'sk-wrong-key' } },
      });
      const callId = `web-${randomUUID()}`;
      const client = await connect(agent.id, callId);
      await quietUntil(client, async () => (await said(callId)).length >= 1, 'the greeting');
      await say(client, 'hello there');
      await quietUntil(
        client,
        async () => (await timeline(callId)).some((e) => e.type === 'call.ended'),
        'the call to end',
      );
      const error = (await timeline(callId)).find((e) => e.type === 'agent.error');
      expect(error?.data.retryable).toBe(false);
      expect(error?.data.message).toMatch(/key was refused/);
      expect(error?.data.message).not.toContain('sk-wrong-key');
      const record: Json = await eventually(
        async () => {
          const res = await p.api('GET', `/v1/calls/${serverId(callId)}`, { key });
          return res.status === 200 && res.body.endReason ? res.body : undefined;
        },
        30_000,
        'the call record',
      );
      expect(record.timeline.map((e: Json) => e.type)).toContain('agent.error');
    }, 120_000);
  },
);
