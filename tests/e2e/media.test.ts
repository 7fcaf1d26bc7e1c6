import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Core } from '../../core/app.ts';
import { sharedFrameClock } from '../../core/audio/index.ts';
import { mintToken } from '../../core/auth/tokens.ts';
import { parseConfig } from '../../core/config/index.ts';
import { createLogger } from '../../core/observability/index.ts';
import { mediaMetrics } from '../../core/realtime/metrics.ts';
import { type RunningHttpServer, startHttpServer } from '../../core/server/index.ts';
import { keys, MemoryStore } from '../../core/store/index.ts';
import {
  jambonzClient,
  type MediaClient,
  nativeClient,
  startedCallId,
  streamRealtime,
  streamSilenceUntil,
  telnyxClient,
  twilioClient,
} from '../support/media-clients.ts';
import { bestCorrelation, canSpeak, speak } from '../support/speech.ts';

const SECRET = 'test-secret-0123456789abcdef';
const API_KEY = 'sk_test_realtime_key';
const PHRASE = 'Hello from the echo test.';

const waitFor = async (
  cond: () => boolean,
  timeoutMs: number,
  what: string,
  diagnose?: () => Promise<string>,
) => {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${diagnose ? `\n${await diagnose()}` : ''}`);
    }
    await Bun.sleep(10);
  }
};

function concat(chunks: Int16Array[]): Int16Array {
  const out = new Int16Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

if (!canSpeak) console.warn('\n!!! espeak-ng or sox not installed: media end-to-end tests are SKIPPED\n');

describe.skipIf(!canSpeak && process.env.CI !== 'true')(
  'media end to end over real sockets (echo agent)',
  () => {
    const store = new MemoryStore();
    let http: RunningHttpServer;
    let core: Core;
    let wsBase: string;

    beforeAll(() => {
      const config = parseConfig({
        PORT: '0',
        REALTIME_WS_SECRET: SECRET,
        REALTIME_API_KEY: API_KEY,
        LOG_LEVEL: 'silent',
      });
      const log = createLogger({ level: 'silent', service: 'test' });
      core = new Core({ config, store, log });
      http = startHttpServer({ port: 0, hostname: '127.0.0.1', plane: core, log });
      wsBase = http.url.replace('http', 'ws');
    });
    afterAll(async () => {
      await core.drain(0);
      await http.stop(0);
      await store.close();
    });

    type Variant = { name: string; rate: number; connect: (callId: string) => Promise<MediaClient> };
    /** Admits the call the way a provider webhook does, and returns its stream token. */
    const streamToken = async (callId: string) => {
      const admitted = await core.admission.admit({
        provider: 'twilio',
        callId,
        to: '+15550100',
        from: '+15550101',
        agentId: 'echo',
      });
      if (!admitted.ok) throw new Error(`not admitted: ${admitted.reason}`);
      return admitted.token;
    };
    const variants: Variant[] = [
      {
        name: 'Twilio (mu-law 8 kHz)',
        rate: 8000,
        connect: async (id) => twilioClient({ baseWsUrl: wsBase, callId: id, token: await streamToken(id) }),
      },
      {
        name: 'Telnyx (PCMU 8 kHz)',
        rate: 8000,
        connect: async (id) => telnyxClient({ baseWsUrl: wsBase, callId: id, token: await streamToken(id) }),
      },
      {
        name: 'Jambonz (L16 16 kHz)',
        rate: 16000,
        connect: async (id) =>
          jambonzClient({ baseWsUrl: wsBase, callId: id, token: await streamToken(id), sampleRate: 16000 }),
      },
      {
        name: 'native (PCM16 16 kHz, API key subprotocol)',
        rate: 16000,
        connect: (id) =>
          nativeClient({
            baseWsUrl: wsBase,
            callId: id,
            sampleRate: 16000,
            protocols: ['sipai.v1', `sipai.key.${API_KEY}`],
          }),
      },
      {
        name: 'native (PCM16 24 kHz, realtime token)',
        rate: 24000,
        connect: (id) =>
          nativeClient({
            baseWsUrl: wsBase,
            callId: id,
            sampleRate: 24000,
            token: mintToken(SECRET, { kind: 'realtime', agentId: 'echo' }, 60),
          }),
      },
    ];

    it.concurrent.each(variants)(
      '$name: echoes speech, returns marks, barges in, ends cleanly',
      async ({ rate, connect }) => {
        const callId = `CA${randomUUID().replaceAll('-', '')}`;
        const speech = speak(PHRASE, rate);
        const client = await connect(callId);
        client.start();
        // A native call's id is namespaced by the server (docs/realtime-protocol.md, "Call ids").
        const id = await startedCallId(client, callId);
        if (client.protocol === 'native') expect(id).toMatch(/^web_[0-9a-f]{12}_CA/);

        /** What the caller heard and the call's timeline so far, for a wait that timed out. */
        const diagnose = async () => {
          const timeline = (await store.range(keys.callTimeline(id))).map((e) => e.fields.type);
          const clock = sharedFrameClock();
          return [
            `heard ${client.heard.audio.length} frames, marks ${JSON.stringify(client.heard.marks)}, clears ${client.heard.clears.length}`,
            `timeline ${timeline.join(',')}`,
            `clock running ${clock.running}, listeners ${clock.listenerCount}, timers replaced ${clock.replacedTimers}`,
            `media ${JSON.stringify(mediaMetrics)}`,
          ].join('\n');
        };

        // Turn 1: speak, then stay quiet (an open microphone: silent frames) while the echo plays back.
        await streamRealtime(client, speech);
        await streamSilenceUntil(
          client,
          () => client.heard.marks.some((m) => m.name === 'echo-1'),
          20_000,
          'the echo of turn 1',
          diagnose,
        );
        const mark = client.heard.marks.find((m) => m.name === 'echo-1')!;
        const echo = client.heard.audio.filter((a) => a.at <= mark.at);

        // Right format and rate: every frame is exactly 20 ms at the wire's rate.
        const frameSamples = (rate * 20) / 1000;
        expect(echo.every((a) => a.pcm.length === frameSamples)).toBe(true);
        // It is the caller's own speech: same length (±300 ms) and strongly correlated.
        const heard = concat(echo.map((a) => a.pcm));
        expect(Math.abs(heard.length - speech.length) / rate).toBeLessThan(0.3);
        // Lags 0.25 ms apart, then every lag around the best of them.
        const { r } = await bestCorrelation(
          speech,
          heard.subarray(0, speech.length),
          Math.round(rate * 0.4),
          rate / 4000,
        );
        expect(r).toBeGreaterThan(0.8);
        // Paced at real time: the frames span their own duration (minus the small lead), not a burst.
        const spanMs = echo[echo.length - 1]!.at - echo[0]!.at;
        const audioMs = echo.length * 20;
        expect(spanMs).toBeGreaterThan(audioMs * 0.85 - 60);
        // The mark arrives after the last frame it marks.
        expect(mark.at).toBeGreaterThanOrEqual(echo[echo.length - 1]!.at);

        // Turn 2, then barge in as soon as its echo starts.
        client.sendDtmf('5');
        const before = client.heard.audio.length;
        await streamRealtime(client, speech);
        await streamSilenceUntil(
          client,
          () => client.heard.audio.length > before + 5,
          15_000,
          'the echo of turn 2',
          diagnose,
        );
        const bargeStarted = performance.now();
        const bargeIn = streamRealtime(client, speech);
        await waitFor(() => client.heard.clears.length > 0, 3_000, 'clear after barge-in', diagnose);
        const clearAt = client.heard.clears[0]!;
        // VAD needs 200 ms of speech to call it speech; the clear follows within a frame or two.
        expect(clearAt - bargeStarted).toBeLessThan(200 + 120);
        await bargeIn;
        // After the clear no audio of the interrupted echo arrives (one frame may be in flight).
        const afterClear = client.heard.audio.filter((a) => a.at > clearAt && a.at < clearAt + 300);
        expect(afterClear.length).toBeLessThanOrEqual(1);

        // Stop: the session ends and the socket closes.
        client.stop();
        const closed = await Promise.race([client.closed, Bun.sleep(3000).then(() => null)]);
        expect(closed).not.toBeNull();
        await waitFor(() => !core.media.sessions.has(id), 3000, 'the session to end', diagnose);
        // The session's end released the call's leases (telephony calls only).
        if (client.protocol !== 'native') {
          const deadline = Date.now() + 2000;
          while ((await store.get(`call:${callId}`)) !== null && Date.now() < deadline) await Bun.sleep(20);
          expect(await store.get(`call:${callId}`)).toBeNull();
        }

        // The timeline tells the story in order.
        await Bun.sleep(50);
        const timeline = (await store.range(keys.callTimeline(id))).map((e) => e.fields.type);
        expect(timeline[0]).toBe('call.started');
        expect(timeline.at(-1)).toBe('call.ended');
        const order = ['user.speech_started', 'turn.completed', 'agent.speaking', 'mark', 'dtmf', 'barge_in'];
        let last = 0;
        for (const type of order) {
          const i = timeline.indexOf(type, last);
          expect(i, `${type} after position ${last} in ${timeline.join(',')}`).toBeGreaterThan(0);
          last = i;
        }
        const global = (await store.range(keys.events))
          .filter((e) => e.fields.callId === id)
          .map((e) => e.fields.type);
        expect(global).toContain('call.started');
        expect(global).toContain('call.ended');
      },
      120_000,
    );
  },
);
