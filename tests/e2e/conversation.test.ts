import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DEMO_AGENT } from '../../control/demo-agent.ts';
import { pocketsphinxAvailable } from '../../core/agent/providers/stt/dictionary.ts';
import { PocketsphinxStt } from '../../core/agent/providers/stt/pocketsphinx.ts';
import { Resampler } from '../../core/audio/resampler.ts';
import { keys } from '../../core/store/index.ts';
import { type Platform, startPlatform } from '../control/platform.ts';
import {
  type Backing,
  embedded,
  eventually,
  type Json,
  makeAccount,
  postgresAndRedis,
} from '../control/support.ts';
import {
  jambonzClient,
  type MediaClient,
  nativeClient,
  startedCallId,
  streamRealtime,
  twilioClient,
} from '../support/media-clients.ts';
import { synthesize, voicesAvailable } from '../support/voices.ts';

const API_KEY = 'sk_test_conversation_realtime_key';
const QUESTION = 'what are your opening hours';
const offline = pocketsphinxAvailable().ok && voicesAvailable.flite;
if (!offline)
  console.warn('\n!!! pocketsphinx or flite not installed: conversation end-to-end tests are SKIPPED\n');

function concat(chunks: Int16Array[]): Int16Array {
  const out = new Int16Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Recognises audio back with the full English model (no grammar): what a listener would make of it. */
async function recogniseBack(pcm: Int16Array, rate: number): Promise<string> {
  const at16k = rate === 16000 ? pcm : new Resampler(rate, 16000).process(pcm);
  const stream = await new PocketsphinxStt().open({ sampleRate: 16000, language: 'en-US' });
  try {
    for (let i = 0; i < at16k.length; i += 320) stream.push(at16k.subarray(i, i + 320));
    return (await stream.finalize()).text;
  } finally {
    stream.close();
  }
}

describe.skipIf(!offline && process.env.CI !== 'true')(
  'a conversation with the offline demo agent over real sockets',
  () => {
    let backing: Backing;
    let p: Platform;
    let wsBase: string;
    let key: string;
    let agentId: string;

    beforeAll(async () => {
      const postgresUrl = inject('postgresUrl');
      const redisUrl = inject('redisUrl');
      backing = postgresUrl && redisUrl ? await postgresAndRedis(postgresUrl, redisUrl) : await embedded();
      p = await startPlatform(backing, { env: { REALTIME_API_KEY: API_KEY } });
      wsBase = p.url.replace('http', 'ws');
      key = (await makeAccount(p.control, `conversation-${randomUUID()}`)).key;
      const res = await p.api('POST', '/v1/agents', { key, body: { ...DEMO_AGENT, name: 'E2E front desk' } });
      expect(res.status).toBe(201);
      agentId = res.body.id;
    });
    afterAll(async () => {
      await p?.close();
      await backing?.close();
    });

    /** Admits the call the way a provider webhook does, and returns its stream token. */
    const streamToken = async (callId: string, provider: 'twilio' | 'jambonz') => {
      const admitted = await p.core.admission.admit({
        provider,
        callId,
        to: '+15550100',
        from: '+15550101',
        agentId,
      });
      if (!admitted.ok) throw new Error(`not admitted: ${admitted.reason}`);
      return admitted.token;
    };

    const variants: { name: string; rate: number; connect: (id: string) => Promise<MediaClient> }[] = [
      {
        name: 'Twilio (mu-law 8 kHz)',
        rate: 8000,
        connect: async (id) =>
          twilioClient({ baseWsUrl: wsBase, callId: id, token: await streamToken(id, 'twilio') }),
      },
      {
        name: 'Jambonz (L16 16 kHz)',
        rate: 16000,
        connect: async (id) =>
          jambonzClient({
            baseWsUrl: wsBase,
            callId: id,
            token: await streamToken(id, 'jambonz'),
            sampleRate: 16000,
          }),
      },
      {
        name: 'native (PCM16 16 kHz)',
        rate: 16000,
        connect: (id) =>
          nativeClient({
            baseWsUrl: wsBase,
            callId: id,
            agentId,
            sampleRate: 16000,
            protocols: ['sipai.v1', `sipai.key.${API_KEY}`],
          }),
      },
    ];

    // At the same time: narrowband (Twilio) and wideband calls share the pooled decoders.
    it.concurrent.each(variants)(
      '$name: the caller asks for the opening hours and hears them',
      async ({ rate, connect }) => {
        const callId = `CA${randomUUID().replaceAll('-', '')}`;
        // The id the call is known by: a native client's is namespaced by the server.
        let id = callId;
        const said = async () =>
          (await p.store.range(keys.callTimeline(id)))
            .filter((e) => e.fields.type === 'agent.said')
            .map((e) => JSON.parse(e.fields.data ?? '{}'));
        // A different voice from the agent's own (rms): the caller is somebody else.
        const question = synthesize(QUESTION, { engine: 'flite', voice: 'slt', sampleRate: rate });
        const silence = new Int16Array(rate / 5); // 200 ms
        const client = await connect(callId);
        client.start();
        id = await startedCallId(client, callId);

        // The greeting plays while the caller stays quiet.
        const quiet = (async () => {
          while ((await said()).length === 0) await streamRealtime(client, silence);
        })();
        await eventually(async () => (await said()).length >= 1, 30_000, 'the greeting to play out');
        await quiet;

        // The caller asks, then waits in silence for the answer.
        await streamRealtime(client, question);
        const answerFrom = client.heard.audio.length;
        const waiting = (async () => {
          while ((await said()).length < 2) {
            await streamRealtime(client, silence);
          }
        })();
        const reply = await eventually(async () => (await said())[1], 30_000, 'the answer to play out');
        await waiting;
        // On a mismatch, the call's timeline says what the server heard and when.
        const timeline = async () =>
          (await p.store.range(keys.callTimeline(id)))
            .map((e) => `${e.fields.type} ${e.fields.data ?? ''}`)
            .join('\n');
        if (reply.interrupted !== false || !String(reply.text).includes('eleven in the morning'))
          expect.fail(`the answer was not the hours:\n${await timeline()}`);

        // The answer is audible speech that says the hours: recognised back, its key words are there.
        const answer = concat(client.heard.audio.slice(answerFrom).map((a) => a.pcm));
        let energy = 0;
        for (const s of answer) energy += s * s;
        expect(Math.sqrt(energy / answer.length)).toBeGreaterThan(300);
        const heard = await recogniseBack(answer, client.sampleRate);
        const keyWords = ['open', 'eleven', 'morning', 'ten', 'night', 'day'];
        const found = keyWords.filter((w) => heard.split(/\s+/).includes(w));
        expect(found.length, `recognised back: "${heard}"`).toBeGreaterThanOrEqual(3);

        client.stop();
        await eventually(() => !p.core.media.sessions.has(id), 10_000, 'the session to end');

        // The call record: the caller's words, the agent's, and the turn's latency.
        const record: Json = await eventually(
          async () => {
            const res = await p.api('GET', `/v1/calls/${id}`, { key });
            return res.status === 200 && res.body.latency.turnMs !== null ? res.body : undefined;
          },
          30_000,
          'the call record with its transcript',
        );
        const user = record.transcript.filter((t: Json) => t.role === 'user').map((t: Json) => t.text);
        const agent = record.transcript.filter((t: Json) => t.role === 'agent').map((t: Json) => t.text);
        expect(user).toContain(QUESTION);
        expect(agent.join(' ')).toContain('eleven in the morning');
        expect(record.latency.turnMs.count).toBeGreaterThanOrEqual(1);
        expect(record.latency.sttMs.count).toBeGreaterThanOrEqual(1);
      },
      120_000,
    );
  },
);
