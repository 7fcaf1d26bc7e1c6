import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type ElevenLabsOptions,
  ElevenLabsTts,
  registerElevenLabs,
  wordsOf,
} from '../../../../core/agent/providers/tts/elevenlabs.ts';
import { type AudioChunk, ProviderError } from '../../../../core/agent/providers/types.ts';
import { ProviderRegistry } from '../../../../core/agent/registry.ts';
import { MULAW_DECODE } from '../../../../core/audio/g711.ts';
import { type FakeElevenLabs, startFakeElevenLabs } from '../../../fakes/elevenlabs.ts';

/**
 * The ElevenLabs adapter against a local server speaking the multi-context WebSocket protocol.
 *
 * Fixtures (tests/fixtures/vendors/elevenlabs/*.json) copy the message shapes of the vendor's
 * AsyncAPI reference, https://elevenlabs.io/docs/api-reference/text-to-speech/v-1-text-to-speech-voice-id-multi-stream-input
 * (schemas `AudioOutputMulti`, `FinalOutputMulti`, `InitialiseContext`, `SendTextMulti`,
 * `FlushContextClient`, `CloseContextClient`, `CloseSocketClient`, `KeepContextAlive`; the
 * alignment values are the schema's own "H starts at 0 ms, lasts 3 ms" example), with the
 * usage of https://elevenlabs.io/docs/eleven-api/guides/how-to/websockets/multi-context-web-socket
 * (flush at sentence ends, `close_context` on barge-in, `inactivity_timeout` default 20 s).
 */

const FIXTURES = join(import.meta.dirname, '../../../fixtures/vendors/elevenlabs');
const fixture = (name: string) => JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8'));
const CLIENT_FIXTURES = readdirSync(FIXTURES)
  .filter((f) => f.startsWith('client-'))
  .map((f) => f.replace(/\.json$/, ''));

/** Where `sample` differs in shape from `model` (keys and JSON types); `exact` also wants every key. */
function shapeErrors(sample: unknown, model: unknown, exact: boolean, path = '$'): string[] {
  const kind = (v: unknown) => (Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v);
  if (kind(sample) !== kind(model)) return [`${path}: ${kind(sample)} where the vendor has ${kind(model)}`];
  if (Array.isArray(sample) && Array.isArray(model)) {
    if (model.length === 0) return [];
    return sample.flatMap((v, i) => shapeErrors(v, model[0], exact, `${path}[${i}]`));
  }
  if (kind(sample) !== 'object') return [];
  const s = sample as Record<string, unknown>;
  const m = model as Record<string, unknown>;
  const errors: string[] = [];
  for (const k of Object.keys(s)) {
    if (!(k in m)) errors.push(`${path}.${k}: not in the vendor's shape`);
    else errors.push(...shapeErrors(s[k], m[k], exact, `${path}.${k}`));
  }
  if (exact) for (const k of Object.keys(m)) if (!(k in s)) errors.push(`${path}.${k}: missing`);
  return errors;
}

/** The client fixture a sent message has the shape of (top-level keys exact), or null. */
function clientShape(msg: Record<string, unknown>): string | null {
  for (const name of CLIENT_FIXTURES) {
    const model = fixture(name) as Record<string, unknown>;
    const sameKeys =
      Object.keys(msg).length === Object.keys(model).length && Object.keys(msg).every((k) => k in model);
    if (sameKeys && shapeErrors(msg, model, false).length === 0) return name;
  }
  return null;
}

/** Polls `cond` on the event loop until it holds (the test timeout bounds the wait). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}

async function collect(stream: AsyncIterable<AudioChunk>): Promise<AudioChunk[]> {
  const out: AudioChunk[] = [];
  for await (const c of stream) out.push(c);
  return out;
}

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ProviderError);
    return err as ProviderError;
  }
  throw new Error('expected a failure');
}

const concat = (chunks: AudioChunk[]) => {
  const out = new Int16Array(chunks.reduce((n, c) => n + c.pcm.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c.pcm, at);
    at += c.pcm.length;
  }
  return out;
};

/** A model's text that stops coming after `text` (the utterance can only end by abort). */
async function* stallAfter(text: string): AsyncGenerator<string> {
  yield text;
  await new Promise(() => {});
}

const words = (chunks: AudioChunk[]) => chunks.flatMap((c) => (c.words ?? []).map((w) => w.word));

let fake: FakeElevenLabs;
let tts: ElevenLabsTts | null;

beforeEach(() => {
  fake = startFakeElevenLabs();
  tts = null;
});

afterEach(() => {
  tts?.close();
  fake.stop();
});

function voice(opts: Partial<ElevenLabsOptions> = {}): ElevenLabsTts {
  tts = new ElevenLabsTts({ apiKey: 'test-key', voiceId: 'voice-1', baseUrl: fake.url, ...opts });
  return tts;
}

/** The messages the fake received for one context, in order. */
const messagesOf = (contextId: string) =>
  fake.received.filter((r) => r.msg.context_id === contextId).map((r) => r.msg);

describe('ElevenLabsTts', () => {
  it('sends the exact request: path, key header, model and format, then one context per utterance', async () => {
    const t = voice({ voiceSettings: { stability: 0.4, similarity_boost: 0.8 } });
    const chunks = await collect(
      t.synthesize('Hello there. How are you today?', new AbortController().signal),
    );

    expect(fake.upgrades).toHaveLength(1);
    const up = fake.upgrades[0]!;
    expect(up.path).toBe('/v1/text-to-speech/voice-1/multi-stream-input');
    expect(up.headers['xi-api-key']).toBe('test-key');
    expect(up.query).toMatchObject({
      model_id: 'eleven_flash_v2_5',
      output_format: 'pcm_16000',
      sync_alignment: 'true',
    });
    expect(Number(up.query.inactivity_timeout)).toBeGreaterThanOrEqual(20);
    expect(JSON.stringify(up.query)).not.toContain('test-key');

    const id = String(fake.received[0]!.msg.context_id);
    expect(messagesOf(id)).toEqual([
      { text: ' ', voice_settings: { stability: 0.4, similarity_boost: 0.8 }, context_id: id },
      { text: 'Hello there. ', flush: true, context_id: id },
      { text: 'How are you ', context_id: id },
      { text: 'today? ', flush: true, context_id: id },
      { close_context: true, context_id: id },
    ]);

    expect(chunks.length).toBe(4); // two audio messages per flush
    expect(chunks.every((c) => c.sampleRate === 16000)).toBe(true);
    // The PCM is exactly the audio the server sent (s16le), nothing lost at message boundaries.
    const sent = Uint8Array.from(fake.audio.get(id)!);
    expect(Array.from(concat(chunks))).toEqual(Array.from(new Int16Array(sent.buffer, 0, sent.length / 2)));
    expect(words(chunks)).toEqual(['Hello', 'there.', 'How', 'are', 'you', 'today?']);
  });

  it('streams: text goes out as whole words while it comes, audio comes back before the text ends', async () => {
    const t = voice();
    let firstAudioBeforeEnd = false;
    const ctrl = new AbortController();
    async function* llm() {
      yield 'Hel';
      yield 'lo the';
      yield 're. How';
      // Holds the rest until the first sentence's audio has come back.
      await until(() => fake.sent.some((s) => typeof s.msg.audio === 'string'));
      firstAudioBeforeEnd = true;
      yield ' are';
      yield ' you?';
    }
    const chunks = await collect(t.synthesize(llm(), ctrl.signal));
    expect(firstAudioBeforeEnd).toBe(true);
    const id = String(fake.received[0]!.msg.context_id);
    const texts = messagesOf(id).map((m) => [m.text, m.flush === true]);
    expect(texts).toEqual([
      [' ', false],
      ['Hello ', false],
      ['there. ', true],
      ['How ', false],
      ['are ', false],
      ['you? ', true],
      [undefined, false], // close_context
    ]);
    expect(words(chunks)).toEqual(['Hello', 'there.', 'How', 'are', 'you?']);
  });

  it('word timings are per chunk, from its start, and never count a word before its end has played', async () => {
    fake.script.chunksPerFlush = 3; // cuts the text mid-word
    fake.script.msPerChar = 10;
    const t = voice();
    const chunks = await collect(t.synthesize('Wonderful morning everybody. ', new AbortController().signal));
    expect(words(chunks)).toEqual(['Wonderful', 'morning', 'everybody.']);
    for (const c of chunks) {
      const durMs = (c.pcm.length * 1000) / c.sampleRate;
      for (const w of c.words ?? []) {
        expect(w.startMs).toBeGreaterThanOrEqual(0);
        expect(w.endMs).toBeLessThanOrEqual(durMs + 1e-9);
      }
      if (c.words?.length) expect(c.text).toBe(c.words.map((w) => w.word).join(' '));
    }
    // The server speaks "Wonderful morning everybody. " (29 characters) in messages of 10, so
    // "morning" (characters 10..16) opens the second message and ends 70 ms into it.
    const second = chunks[1]!;
    expect(second.words?.[0]).toEqual({ word: 'morning', startMs: 0, endMs: 70 });
  });

  it('carries a word cut at a message end into the next message', () => {
    const carry = { fragment: '' };
    const a = wordsOf(
      { chars: [...'Hi the'], startsMs: [0, 5, 10, 15, 20, 25], durationsMs: [5, 5, 5, 5, 5, 5] },
      carry,
    );
    expect(a.words.map((w) => w.word)).toEqual(['Hi']);
    expect(carry.fragment).toBe('the');
    const b = wordsOf(
      { chars: [...'re now.'], startsMs: [0, 5, 10, 15, 20, 25, 30], durationsMs: [5, 5, 5, 5, 5, 5, 5] },
      carry,
    );
    expect(b.words).toEqual([
      { word: 'there', startMs: 0, endMs: 10 },
      { word: 'now.', startMs: 15, endMs: 35 },
    ]);
    expect(b.text).toBe('there now.');
    expect(carry.fragment).toBe(''); // closing punctuation ends a word
    // A message that is all one unfinished word is carried whole.
    const d = { fragment: '' };
    expect(wordsOf({ chars: [...'Don'], startsMs: [0, 1, 2], durationsMs: [1, 1, 1] }, d).words).toEqual([]);
    expect(wordsOf({ chars: [...'e. '], startsMs: [0, 1, 2], durationsMs: [1, 1, 1] }, d).words).toEqual([
      { word: 'Done.', startMs: 0, endMs: 2 },
    ]);
    // A carried word the next message does not continue ended with the previous message.
    const c = { fragment: 'done' };
    expect(
      wordsOf({ chars: [' ', 'o', 'k'], startsMs: [0, 1, 2], durationsMs: [1, 1, 1] }, c).words[0],
    ).toEqual({
      word: 'done',
      startMs: 0,
      endMs: 0,
    });
  });

  it('ulaw_8000 is decoded from G.711 mu-law to PCM16 at 8000 Hz', async () => {
    const t = voice({ outputFormat: 'ulaw_8000' });
    expect(t.sampleRate).toBe(8000);
    const chunks = await collect(t.synthesize('Short reply.', new AbortController().signal));
    expect(fake.upgrades[0]!.query.output_format).toBe('ulaw_8000');
    const id = String(fake.received[0]!.msg.context_id);
    const sent = fake.audio.get(id)!;
    expect(chunks.every((c) => c.sampleRate === 8000)).toBe(true);
    expect(Array.from(concat(chunks))).toEqual(sent.map((b) => MULAW_DECODE[b]!));
  });

  it('keeps one socket for the call: each utterance is a new context on it', async () => {
    const t = voice();
    await collect(t.synthesize('One.', new AbortController().signal));
    await collect(t.synthesize('Two.', new AbortController().signal));
    expect(fake.upgrades).toHaveLength(1);
    const ids = new Set(fake.received.map((r) => r.msg.context_id).filter(Boolean));
    expect(ids.size).toBe(2);
  });

  it('abort closes the context, ends quietly, and the socket serves the next utterance', async () => {
    let release!: () => void;
    fake.script.gate = new Promise((r) => {
      release = r;
    });
    fake.script.chunksPerFlush = 4;
    const t = voice();
    const ctrl = new AbortController();
    const got: AudioChunk[] = [];
    const run = (async () => {
      for await (const c of t.synthesize(stallAfter('A long sentence to be cut off. '), ctrl.signal)) {
        got.push(c);
        ctrl.abort(); // barge-in after the first chunk
      }
    })();
    release();
    await run; // no throw
    expect(got).toHaveLength(1);
    const id = String(fake.received[0]!.msg.context_id);
    await until(() => messagesOf(id).some((m) => m.close_context === true));
    expect(fake.open()).toBe(1);

    fake.script.gate = null;
    const next = await collect(t.synthesize('Next.', new AbortController().signal));
    expect(next.length).toBeGreaterThan(0);
    expect(fake.upgrades).toHaveLength(1);
  });

  it('abort while waiting for the first audio returns at once', async () => {
    fake.script.gate = new Promise(() => {}); // audio never comes
    const t = voice();
    const ctrl = new AbortController();
    const run = collect(t.synthesize(stallAfter('Never heard. '), ctrl.signal));
    await until(() => fake.received.some((r) => r.msg.flush === true));
    ctrl.abort();
    expect(await run).toEqual([]);
    const id = String(fake.received[0]!.msg.context_id);
    await until(() => messagesOf(id).some((m) => m.close_context === true));
  });

  it('a refused key is a non-retryable http_401 naming the key, without the key', async () => {
    const t = voice({ apiKey: 'sk_wrong_secret' });
    const err = await failure(collect(t.synthesize('Hello.', new AbortController().signal)));
    expect(err.retryable).toBe(false);
    expect(err.code).toBe('http_401');
    expect(err.message).toMatch(/refused the API key/);
    expect(err.message).not.toContain('sk_wrong_secret');
    expect(fake.refused).toBe(1);
  });

  it('a dropped socket fails the utterance as retryable; the next one reconnects', async () => {
    fake.script.dropAfterAudio = 1;
    const t = voice();
    const got: AudioChunk[] = [];
    const err = await failure(
      (async () => {
        for await (const c of t.synthesize('First sentence here. Second one.', new AbortController().signal))
          got.push(c);
      })(),
    );
    expect(err.retryable).toBe(true);
    expect(err.code).toBe('connection_lost');
    expect(got.length).toBeLessThanOrEqual(1);

    fake.script.dropAfterAudio = null;
    const again = await collect(t.synthesize('Retry.', new AbortController().signal));
    expect(again.length).toBeGreaterThan(0);
    expect(fake.upgrades).toHaveLength(2);
  });

  it('no audio within the timeout is a retryable timeout, and the context is closed', async () => {
    fake.script.silent = true;
    const t = voice({ timeoutMs: 100 });
    const err = await failure(collect(t.synthesize('Anyone there?', new AbortController().signal)));
    expect(err.retryable).toBe(true);
    expect(err.code).toBe('timeout');
    const id = String(fake.received[0]!.msg.context_id);
    await until(() => messagesOf(id).some((m) => m.close_context === true));
  });

  it('a server that never answers the upgrade is a retryable connect timeout; a closed port is retryable', async () => {
    const held: Socket[] = [];
    const mute: Server = createServer((s) => held.push(s));
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    const port = (mute.address() as { port: number }).port;
    try {
      const t = new ElevenLabsTts({ apiKey: 'k', baseUrl: `ws://127.0.0.1:${port}`, connectTimeoutMs: 100 });
      const err = await failure(collect(t.synthesize('Hi.', new AbortController().signal)));
      expect(err.retryable).toBe(true);
      expect(err.code).toBe('timeout');
    } finally {
      for (const s of held) s.destroy();
      mute.close();
    }
    const closed = new ElevenLabsTts({ apiKey: 'k', baseUrl: `ws://127.0.0.1:${port}` });
    const err = await failure(collect(closed.synthesize('Hi.', new AbortController().signal)));
    expect(err.retryable).toBe(true);
  });

  it('a vendor error message (quota) fails the utterance without retry', async () => {
    fake.script.errorOnFlush = {
      message: 'This request exceeds your quota of 10000.',
      error: 'quota_exceeded',
      code: 1008,
    };
    const t = voice();
    const err = await failure(collect(t.synthesize('Hello.', new AbortController().signal)));
    expect(err.retryable).toBe(false);
    expect(err.code).toBe('quota_exceeded');
  });

  it('keeps a context waiting for text alive with {"text":""} before the server idles it out', async () => {
    fake.script.contextInactivityMs = 150;
    const t = voice({ keepAliveMs: 40 });
    const ctrl = new AbortController();
    let id = '';
    const keepAlives = () => messagesOf(id).filter((m) => m.text === '' && m.flush === undefined).length;
    async function* slowLlm() {
      yield 'Let me check. ';
      await until(() => fake.received.length > 0);
      id = String(fake.received[0]!.msg.context_id);
      await until(() => keepAlives() >= 5); // 200 ms or more of waiting: past the idle limit
      yield 'Done.';
    }
    const chunks = await collect(t.synthesize(slowLlm(), ctrl.signal));
    expect(words(chunks)).toEqual(['Let', 'me', 'check.', 'Done.']);
    expect(fake.open()).toBe(1);
  });

  it('without keep-alives the fake idles the socket out (the keep-alive test can fail)', async () => {
    fake.script.contextInactivityMs = 100;
    const t = voice({ keepAliveMs: 60_000 });
    async function* stalled() {
      yield 'Let me check. ';
      await until(() => fake.open() === 0);
      yield 'Done.';
    }
    const err = await failure(collect(t.synthesize(stalled(), new AbortController().signal)));
    expect(err.retryable).toBe(true);
    expect(err.code).toBe('connection_lost');
  });

  it('close() sends close_socket and the server closes the socket', async () => {
    const t = voice();
    await collect(t.synthesize('Bye.', new AbortController().signal));
    t.close();
    await until(() => fake.received.some((r) => r.msg.close_socket === true));
    await until(() => fake.open() === 0);
    tts = null;
  });

  it('registers as "elevenlabs": available with ELEVENLABS_API_KEY, options from the agent', async () => {
    const registry = registerElevenLabs(new ProviderRegistry());
    expect(() => registry.require('tts', 'elevenlabs', {})).toThrow(/ELEVENLABS_API_KEY is not set/);
    const create = registry.require('tts', 'elevenlabs', { ELEVENLABS_API_KEY: 'test-key' });
    const made = create(
      {
        provider: 'elevenlabs',
        model: 'eleven_turbo_v2_5',
        options: { outputFormat: 'ulaw_8000', stability: 0.3 },
      },
      'voice-9',
      { ELEVENLABS_API_KEY: 'test-key', ELEVENLABS_BASE_URL: fake.url },
    ) as ElevenLabsTts;
    tts = made;
    expect(made.sampleRate).toBe(8000);
    await collect(made.synthesize('Hi.', new AbortController().signal));
    expect(fake.upgrades[0]!.path).toBe('/v1/text-to-speech/voice-9/multi-stream-input');
    expect(fake.upgrades[0]!.query).toMatchObject({
      model_id: 'eleven_turbo_v2_5',
      output_format: 'ulaw_8000',
    });
    expect(fake.received[0]!.msg.voice_settings).toEqual({ stability: 0.3 });
    expect(() =>
      create({ provider: 'elevenlabs', options: { outputFormat: 'mp3_44100_128' } }, undefined, {
        ELEVENLABS_API_KEY: 'k',
      }),
    ).toThrow(/not supported/);
  });
});

describe('ElevenLabs wire shapes', () => {
  it("the fake's messages have the vendor's documented shapes", async () => {
    const t = voice();
    await collect(t.synthesize('Hello world. Again.', new AbortController().signal));
    const audio = fake.sent.filter((s) => 'audio' in s.msg);
    const finals = fake.sent.filter((s) => 'isFinal' in s.msg);
    expect(audio.length).toBeGreaterThan(0);
    expect(finals.length).toBe(1);
    for (const s of audio) expect(shapeErrors(s.msg, fixture('server-audio-output'), true)).toEqual([]);
    for (const s of finals) expect(shapeErrors(s.msg, fixture('server-final-output'), true)).toEqual([]);
  });

  it("every message the adapter sends has one of the vendor's documented shapes", async () => {
    fake.script.contextInactivityMs = null;
    const t = voice({ voiceSettings: { stability: 0.5 }, keepAliveMs: 20 });
    let id = '';
    async function* pieces() {
      yield 'Hello ';
      await until(() => fake.received.length > 0);
      id = String(fake.received[0]!.msg.context_id);
      await until(() => messagesOf(id).some((m) => m.text === '' && m.flush === undefined));
      yield 'world';
    }
    await collect(t.synthesize(pieces(), new AbortController().signal));
    // An aborted utterance and a trailing flush without text, then the socket's close.
    const ctrl = new AbortController();
    async function* cut() {
      yield 'Cut ';
      ctrl.abort();
      yield 'off';
    }
    await collect(t.synthesize(cut(), ctrl.signal));
    t.close();
    await until(() => fake.received.some((r) => r.msg.close_socket === true));
    tts = null;
    const shapes = new Set<string>();
    for (const r of fake.received) {
      const shape = clientShape(r.msg);
      expect(shape, JSON.stringify(r.msg)).not.toBeNull();
      shapes.add(shape!);
    }
    for (const name of [
      'client-initialise-context',
      'client-send-text-flush',
      'client-close-context',
      'client-close-socket',
    ]) {
      expect(shapes).toContain(name);
    }
  });
});
