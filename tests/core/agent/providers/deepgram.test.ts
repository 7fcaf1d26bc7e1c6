import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DeepgramStt,
  type DeepgramSttOptions,
  listenUrl,
  registerDeepgram,
} from '../../../../core/agent/providers/stt/deepgram.ts';
import { ProviderError, type SttStream, type Transcript } from '../../../../core/agent/providers/types.ts';
import { ProviderRegistry } from '../../../../core/agent/registry.ts';
import { encodeMulaw } from '../../../../core/audio/g711.ts';
import { type FakeDeepgram, type FakeWord, startFakeDeepgram } from '../../../fakes/deepgram.ts';

/*
 * Fixtures (tests/fixtures/vendors/deepgram/), copied from Deepgram's documentation:
 * - results.json: https://developers.deepgram.com/docs/live-streaming-audio ("Analyze the Response")
 * - utterance-end.json: https://developers.deepgram.com/docs/utterance-end
 * - speech-started.json: https://developers.deepgram.com/docs/speech-started
 * - metadata.json, close-stream.json: https://developers.deepgram.com/docs/close-stream
 * - finalize.json, finalize-response.json: https://developers.deepgram.com/docs/finalize
 * - keep-alive.json: https://developers.deepgram.com/docs/audio-keep-alive
 */
const FIXTURES = join(import.meta.dirname, '../../../fixtures/vendors/deepgram');
const fixture = (name: string) => JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8'));

let fake: FakeDeepgram;
let streams: SttStream[] = [];

beforeEach(() => {
  fake = startFakeDeepgram();
  streams = [];
});

afterEach(() => {
  for (const s of streams) s.close();
  fake.stop();
});

function stt(extra: Partial<DeepgramSttOptions> = {}): DeepgramStt {
  return new DeepgramStt({ apiKey: fake.apiKey, baseUrl: fake.url, ...extra });
}

async function open(rate: 8000 | 16000, extra: Partial<DeepgramSttOptions> = {}, options = {}) {
  const stream = await stt(extra).open({ sampleRate: rate, language: 'en-US', ...options });
  streams.push(stream);
  return stream;
}

/** Waits for a condition (no fixed sleeps). */
async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const started = performance.now();
  while (!cond()) {
    if (performance.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A tone (so mu-law bytes differ from silence), `ms` long, at `rate`. */
function tone(ms: number, rate: number, offset = 0): Int16Array {
  const pcm = new Int16Array(Math.round((ms * rate) / 1000));
  for (let i = 0; i < pcm.length; i++)
    pcm[i] = Math.round(8000 * Math.sin(((i + offset) * 2 * Math.PI * 440) / rate));
  return pcm;
}

/** Pushes `ms` of audio in 20 ms frames, reusing one frame buffer (as the pipeline may). */
function pushAudio(stream: SttStream, ms: number, rate: number): Int16Array {
  const all = tone(ms, rate);
  const frame = new Int16Array(rate / 50);
  for (let at = 0; at < all.length; at += frame.length) {
    const piece = all.subarray(at, at + frame.length);
    frame.set(piece);
    stream.push(frame.subarray(0, piece.length));
  }
  return all;
}

const HELLO: FakeWord[] = [
  { word: 'Hello', start: 0.2, end: 0.5, confidence: 0.9 },
  { word: 'there', start: 0.55, end: 0.8, confidence: 0.8 },
];

async function rejection(p: Promise<unknown>): Promise<ProviderError> {
  const err = await p.then(
    () => null,
    (e) => e,
  );
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

describe('deepgram request', () => {
  it('connects to /v1/listen with the token header and the documented query at 8 kHz', async () => {
    await open(8000);
    const conn = fake.connections[0]!;
    expect(conn.path).toBe('/v1/listen');
    expect(conn.headers.authorization).toBe(`Token ${fake.apiKey}`);
    expect(Object.fromEntries(conn.query)).toEqual({
      model: 'nova-3',
      language: 'en-US',
      encoding: 'mulaw',
      sample_rate: '8000',
      channels: '1',
      interim_results: 'true',
      endpointing: '300',
      utterance_end_ms: '1000',
      vad_events: 'true',
    });
  });

  it('asks for linear16 at 16 kHz and applies the agent model and options', async () => {
    await open(
      16000,
      { model: 'nova-2', options: { endpointing: 500, smart_format: true } },
      { model: 'nova-3-general', options: { keyterm: 'Acme Dental, cleaning', utterance_end_ms: 1500 } },
    );
    const q = fake.connections[0]!.query;
    expect(q.get('encoding')).toBe('linear16');
    expect(q.get('sample_rate')).toBe('16000');
    expect(q.get('model')).toBe('nova-3-general');
    expect(q.get('endpointing')).toBe('500');
    expect(q.get('utterance_end_ms')).toBe('1500');
    expect(q.get('smart_format')).toBe('true');
    expect(q.getAll('keyterm')).toEqual(['Acme Dental', 'cleaning']);
  });

  it('keeps encoding and rate its own whatever the options say', () => {
    const url = new URL(
      listenUrl(
        { apiKey: 'k', baseUrl: 'https://dg.example/', options: { encoding: 'opus', sample_rate: 48000 } },
        { sampleRate: 8000, language: 'es' },
      ),
    );
    expect(url.protocol).toBe('wss:');
    expect(url.pathname).toBe('/v1/listen');
    expect(url.searchParams.get('encoding')).toBe('mulaw');
    expect(url.searchParams.get('sample_rate')).toBe('8000');
    expect(url.searchParams.get('language')).toBe('es');
  });

  it('refuses rates it does not stream', async () => {
    const err = await rejection(stt().open({ sampleRate: 24000, language: 'en-US' }));
    expect(err.code).toBe('unsupported_rate');
    expect(err.retryable).toBe(false);
    expect(fake.connections).toHaveLength(0);
  });
});

describe('deepgram streaming', () => {
  it('sends mu-law at 8 kHz, streams partials and an early final, and finalizes the utterance', async () => {
    fake.words = HELLO;
    const stream = await open(8000);
    const seen: Transcript[] = [];
    stream.onTranscript = (t) => seen.push(t);
    const pcm = pushAudio(stream, 1200, 8000);
    await until(() => seen.some((t) => t.final), 'the early final');
    expect(seen.filter((t) => !t.final).map((t) => t.text)).toContain('hello');
    expect(seen.find((t) => t.final)?.text).toBe('hello there');

    const conn = fake.connections[0]!;
    await until(() => conn.audioBytes === pcm.length, 'all audio at the fake');
    const expected = new Uint8Array(pcm.length);
    encodeMulaw(pcm, expected);
    expect(Buffer.concat(conn.audio)).toEqual(Buffer.from(expected));

    const t = await stream.finalize();
    expect(t.text).toBe('hello there');
    expect(t.final).toBe(true);
    expect(t.confidence).toBeCloseTo(0.8);
    expect(t.words).toEqual([
      { word: 'hello', startMs: 200, endMs: 500 },
      { word: 'there', startMs: 550, endMs: 800 },
    ]);
  });

  it('sends linear16 bytes unchanged at 16 kHz', async () => {
    const stream = await open(16000);
    const pcm = pushAudio(stream, 300, 16000);
    const conn = fake.connections[0]!;
    await until(() => conn.audioBytes === pcm.byteLength, 'all audio at the fake');
    expect(Buffer.concat(conn.audio)).toEqual(Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength));
  });

  it('flushes with Finalize when the turn ends before Deepgram endpoints', async () => {
    fake.words = HELLO;
    const stream = await open(16000);
    pushAudio(stream, 900, 16000); // 100 ms after the last word: below the 300 ms endpointing
    const t = await stream.finalize();
    expect(t.text).toBe('hello there');
    const conn = fake.connections[0]!;
    expect(conn.controls).toContainEqual({ type: 'Finalize' });
    expect(conn.sent.some((m) => m.from_finalize === true)).toBe(true);
  });

  it('joins the final segments of one turn across Deepgram endpoints', async () => {
    fake.words = [
      { word: 'book', start: 0.1, end: 0.3 },
      { word: 'a', start: 0.3, end: 0.4 },
      { word: 'table', start: 0.4, end: 0.7 },
      { word: 'for', start: 1.2, end: 1.4 },
      { word: 'two', start: 1.4, end: 1.6 },
    ];
    const stream = await open(8000);
    pushAudio(stream, 2000, 8000);
    const conn = fake.connections[0]!;
    await until(() => conn.sent.filter((m) => m.speech_final).length === 2, 'two endpoints');
    const t = await stream.finalize();
    expect(t.text).toBe('book a table for two');
    expect(t.words?.map((w) => w.word)).toEqual(['book', 'a', 'table', 'for', 'two']);

    // The next turn starts empty.
    expect((await stream.finalize()).text).toBe('');
  });

  it('returns an empty transcript at once when nothing was said', async () => {
    const stream = await open(8000);
    expect(await stream.finalize()).toEqual({ text: '', final: true });
    expect(fake.connections[0]!.controls).toEqual([]);
  });

  it('does not wait for a flush when Deepgram already finalised every sample', async () => {
    fake.words = [{ word: 'yes', start: 0.1, end: 0.3 }];
    fake.answerFinalize = false;
    const stream = await open(8000, { finalizeTimeoutMs: 10_000 });
    pushAudio(stream, 600, 8000); // the endpoint lands on the last frame
    const conn = fake.connections[0]!;
    await until(() => conn.sent.some((m) => m.speech_final), 'the endpoint');
    expect((await stream.finalize()).text).toBe('yes');
    expect(conn.controls).toEqual([]);
  });

  it('sends KeepAlive while no audio flows, which keeps an idle socket open', async () => {
    fake.idleTimeoutMs = 400;
    await open(8000, { keepAliveMs: 40 });
    const conn = fake.connections[0]!;
    await until(() => conn.controls.filter((c) => c.type === 'KeepAlive').length >= 8, 'keep-alives');
    expect(conn.audioBytes).toBe(0);
    expect(conn.closed).toBe(false);
    expect(fake.connections).toHaveLength(1);
  });

  it('without KeepAlive Deepgram closes an idle socket, and the stream reconnects', async () => {
    fake.idleTimeoutMs = 100;
    await open(8000, { keepAliveMs: 60_000 });
    await until(() => fake.connections.length === 2, 'the reconnect');
    expect(fake.connections[0]!.controls).toEqual([]);
  });

  it('close sends CloseStream and closes; finalize then fails', async () => {
    const stream = await open(8000);
    stream.close();
    const conn = fake.connections[0]!;
    await until(() => conn.closed, 'the socket closed');
    expect(conn.controls).toEqual([{ type: 'CloseStream' }]);
    const err = await rejection(stream.finalize());
    expect(err.code).toBe('closed');
  });

  it('an aborted finalize rejects at once with the abort reason', async () => {
    fake.words = HELLO;
    fake.answerFinalize = false;
    const stream = await open(8000, { finalizeTimeoutMs: 10_000 });
    pushAudio(stream, 700, 8000);
    const abort = new AbortController();
    const pending = stream.finalize(abort.signal);
    await until(() => fake.connections[0]!.controls.some((c) => c.type === 'Finalize'), 'Finalize sent');
    const started = performance.now();
    abort.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    expect(performance.now() - started).toBeLessThan(1000); // finalizeTimeoutMs is 10 s
    await expect(stream.finalize(abort.signal)).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('resolves with what it has when Deepgram is alive but does not answer Finalize', async () => {
    fake.words = [{ word: 'yes', start: 0.1, end: 0.3 }];
    fake.answerFinalize = false;
    const stream = await open(8000, { finalizeTimeoutMs: 500 });
    pushAudio(stream, 700, 8000); // endpointed: "yes" is final
    const conn = fake.connections[0]!;
    await until(() => conn.sent.some((m) => m.speech_final), 'the endpoint');
    pushAudio(stream, 100, 8000); // a little more audio, so a flush is due
    const pending = stream.finalize();
    await until(() => conn.controls.some((c) => c.type === 'Finalize'), 'Finalize sent');
    conn.send({ type: 'SpeechStarted', channel: [0, 1], timestamp: 0.8 }); // the socket is alive
    expect((await pending).text).toBe('yes');
    expect(fake.connections).toHaveLength(1);
  });
});

describe('deepgram errors', () => {
  it('a refused key is not retryable and the message says so without the key', async () => {
    const err = await rejection(
      new DeepgramStt({ apiKey: 'wrong-key-123', baseUrl: fake.url }).open({
        sampleRate: 8000,
        language: 'en-US',
      }),
    );
    expect(err.code).toBe('http_401');
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/refused the API key/);
    expect(err.message).not.toContain('wrong-key-123');
  });

  it.each([
    [429, true],
    [500, true],
    [503, true],
    [400, false],
    [403, false],
  ])('HTTP %i at the upgrade: retryable %s', async (status, retryable) => {
    fake.fault({ status });
    const err = await rejection(stt().open({ sampleRate: 8000, language: 'en-US' }));
    expect(err.code).toBe(`http_${status}`);
    expect(err.retryable).toBe(retryable);
  });

  it('an upgrade that never completes times out, retryable', async () => {
    fake.fault('hang');
    const started = performance.now();
    const err = await rejection(stt({ connectTimeoutMs: 150 }).open({ sampleRate: 8000, language: 'en-US' }));
    expect(err.code).toBe('timeout');
    expect(err.retryable).toBe(true);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('a refused TCP connection is retryable', async () => {
    const url = fake.url;
    fake.stop();
    fake = startFakeDeepgram();
    const err = await rejection(
      new DeepgramStt({ apiKey: 'k', baseUrl: url }).open({ sampleRate: 8000, language: 'en-US' }),
    );
    expect(err.code).toBe('connect_failed');
    expect(err.retryable).toBe(true);
  });

  it('reconnects once after a drop and replays the audio Deepgram had not finalised', async () => {
    fake.words = HELLO;
    fake.onAudio = (conn) => {
      if (conn.index === 0 && conn.audioSec >= 0.4 && !conn.closed) conn.drop(1011, 'NET-0001');
    };
    const lines: string[] = [];
    const logger = pino(
      { level: 'debug' },
      new Writable({
        write: (chunk, _encoding, done) => {
          lines.push(String(chunk));
          done();
        },
      }),
    );
    const stream = await open(8000, { logger });
    const seen: Transcript[] = [];
    stream.onTranscript = (t) => seen.push(t);
    const first = pushAudio(stream, 400, 8000);
    await until(() => fake.connections.length === 2 && !!fake.connections[1]!.audioBytes, 'the reconnect');
    pushAudio(stream, 600, 8000);
    const t = await stream.finalize();
    expect(t.text).toBe('hello there');
    const [a, b] = fake.connections;
    expect(a!.audioBytes).toBe(first.length);
    // Nothing was final on the first socket: the second got everything from the start.
    expect(b!.audioBytes).toBe(first.length + 600 * 8);
    expect(Buffer.concat(b!.audio).subarray(0, a!.audioBytes)).toEqual(Buffer.concat(a!.audio));
    expect(lines.join('')).toContain('stt socket reconnected');
    expect(lines.join('')).not.toContain(fake.apiKey);
  });

  it('replays only the audio after the last final result', async () => {
    fake.words = [{ word: 'yes', start: 0.1, end: 0.3 }];
    fake.wordsFor.set(1, [{ word: 'please', start: 0.1, end: 0.4 }]);
    const stream = await open(8000);
    pushAudio(stream, 1000, 8000); // "yes" endpointed at ~0.6 s
    const conn = fake.connections[0]!;
    await until(() => conn.sent.some((m) => m.speech_final), 'the endpoint');
    conn.drop(1011);
    await until(() => fake.connections.length === 2, 'the reconnect');
    await until(() => fake.connections[1]!.audioBytes > 0, 'the replay');
    // At most the unfinalised tail (≤ 0.4 s plus one 20 ms frame) went again.
    expect(fake.connections[1]!.audioBytes).toBeLessThanOrEqual(0.42 * 8000);
    pushAudio(stream, 800, 8000);
    const t = await stream.finalize();
    expect(t.text).toBe('yes please');
    // Timings stay on the stream's timeline across sockets.
    expect(t.words![1]!.startMs).toBeGreaterThan(t.words![0]!.endMs);
  });

  it('a second drop before the new socket produced results fails the stream, retryable', async () => {
    fake.onAudio = (conn) => {
      if (!conn.closed) conn.drop(1011);
    };
    const stream = await open(8000);
    pushAudio(stream, 100, 8000);
    await until(() => fake.connections.length === 2, 'the reconnect');
    pushAudio(stream, 100, 8000);
    const err = await rejection(
      (async () => {
        await until(() => fake.connections[1]!.closed, 'the second drop');
        return stream.finalize();
      })(),
    );
    expect(err.retryable).toBe(true);
    expect(err.code).toBe('dropped');
    expect(fake.connections).toHaveLength(2);
  });

  it('a close for undecodable audio (1008) is not retried', async () => {
    const stream = await open(8000);
    pushAudio(stream, 100, 8000);
    const conn = fake.connections[0]!;
    await until(() => conn.audioBytes === 800, 'the audio');
    conn.drop(1008, 'DATA-0000');
    const err = await rejection(stream.finalize());
    expect(err.code).toBe('ws_1008');
    expect(err.retryable).toBe(false);
    expect(fake.connections).toHaveLength(1);
  });

  it('a server that stops answering: reconnect, then a retryable timeout', async () => {
    fake.words = HELLO;
    fake.silent = true;
    const stream = await open(8000, { finalizeTimeoutMs: 100 });
    pushAudio(stream, 700, 8000);
    const err = await rejection(stream.finalize());
    expect(err.code).toBe('timeout');
    expect(err.retryable).toBe(true);
    expect(fake.connections).toHaveLength(2);
    expect(fake.connections[1]!.controls).toContainEqual({ type: 'Finalize' });
  });
});

describe('deepgram registration', () => {
  it('is available only with DEEPGRAM_API_KEY, and the factory follows DEEPGRAM_BASE_URL', async () => {
    const registry = registerDeepgram(new ProviderRegistry());
    expect(registry.stt.get('deepgram')!.available({})).toEqual({
      ok: false,
      missing: 'DEEPGRAM_API_KEY is not set',
    });
    const env = { DEEPGRAM_API_KEY: fake.apiKey, DEEPGRAM_BASE_URL: fake.url };
    const create = registry.require('stt', 'deepgram', env);
    const provider = create({ provider: 'deepgram', model: 'nova-2', options: { keywords: 'acme:2' } }, env);
    expect(provider.name).toBe('deepgram');
    expect(provider.sampleRates).toEqual([8000, 16000]);
    streams.push(await provider.open({ sampleRate: 8000, language: 'en-US' }));
    const q = fake.connections[0]!.query;
    expect(q.get('model')).toBe('nova-2');
    expect(q.getAll('keywords')).toEqual(['acme:2']);
  });
});

/** The JSON shape of a value: key sets of objects, element shapes of arrays, primitive types. */
function shape(value: unknown): unknown {
  if (Array.isArray(value)) return value.length ? [shape(value[0])] : [];
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, shape(v)]),
    );
  }
  return typeof value;
}

describe('deepgram fake against the documented shapes', () => {
  it('every message the fake sends has the shape of the documented example', async () => {
    fake.words = [
      { word: 'tell', start: 0.1, end: 0.3 },
      { word: 'me', start: 0.3, end: 0.5 },
      { word: 'more', start: 1.0, end: 1.2 },
    ];
    const stream = await open(8000, { keepAliveMs: 30 }, { options: { smart_format: true } });
    pushAudio(stream, 1100, 8000);
    await stream.finalize(); // from_finalize for "more"
    pushAudio(stream, 1500, 8000); // UtteranceEnd after "more"
    const conn = fake.connections[0]!;
    await until(() => conn.sent.some((m) => m.type === 'UtteranceEnd'), 'UtteranceEnd');
    await until(() => conn.controls.some((c) => c.type === 'KeepAlive'), 'a KeepAlive');
    stream.close();
    await until(() => conn.sent.some((m) => m.type === 'Metadata'), 'Metadata');

    const byType = (type: string) => conn.sent.filter((m) => m.type === type);
    const results = byType('Results');
    expect(results.some((m) => !m.is_final)).toBe(true);
    expect(results.some((m) => m.speech_final)).toBe(true);
    expect(results.some((m) => m.from_finalize)).toBe(true);
    for (const m of results.filter(
      (r) => (r.channel as { alternatives: Array<{ words: unknown[] }> }).alternatives[0]!.words.length,
    )) {
      expect(shape(m)).toEqual(shape(fixture('results')));
    }
    for (const m of byType('UtteranceEnd')) expect(shape(m)).toEqual(shape(fixture('utterance-end')));
    for (const m of byType('SpeechStarted')) expect(shape(m)).toEqual(shape(fixture('speech-started')));
    expect(byType('SpeechStarted').length).toBeGreaterThan(0);
    for (const m of byType('Metadata')) expect(shape(m)).toEqual(shape(fixture('metadata')));
    expect(results.find((m) => m.from_finalize)).toMatchObject(fixture('finalize-response'));
    expect(
      conn.sent.every((m) =>
        ['Results', 'UtteranceEnd', 'SpeechStarted', 'Metadata'].includes(m.type as string),
      ),
    ).toBe(true);

    // And what the adapter sends is exactly the documented control messages.
    const controls = new Set(conn.controls.map((c) => JSON.stringify(c)));
    for (const name of ['keep-alive', 'finalize', 'close-stream']) {
      expect(controls.has(JSON.stringify(fixture(name)))).toBe(true);
    }
    expect(controls.size).toBe(3);
  });

  it('the fake refuses a missing or wrong token with 401', async () => {
    const url = `${fake.url.replace('ws', 'http')}/v1/listen?encoding=mulaw&sample_rate=8000`;
    const none = await fetch(url);
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ err_code: 'INVALID_AUTH' });
    for (const authorization of ['Token nope', `Bearer ${fake.apiKey}`]) {
      expect((await fetch(url, { headers: { authorization } })).status).toBe(401);
    }
    // The right token gets past auth (then wants a WebSocket).
    expect((await fetch(url, { headers: { authorization: `Token ${fake.apiKey}` } })).status).toBe(426);
    expect(fake.connections).toHaveLength(0);
  });
});
