import type { ProviderChoice } from '../../config.ts';
import type { ProviderEnv, ProviderRegistry } from '../../registry.ts';
import {
  createOpenAiChat,
  createOpenAiCompatibleChat,
  DEFAULT_FIRST_BYTE_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  endpoint,
  OPENAI_BASE_URL,
  option,
  streamPost,
} from '../llm/openai.ts';
import { type AudioChunk, ProviderError, type TextToSpeech } from '../types.ts';
import { sentencesOf } from './sentences.ts';

/** The rate of OpenAI's `pcm` speech: headerless 16-bit little-endian mono. */
export const OPENAI_TTS_RATE = 24000;
export const DEFAULT_TTS_MODEL = 'gpt-4o-mini-tts';
export const DEFAULT_TTS_VOICE = 'alloy';

export interface OpenAiTtsOptions {
  apiKey: string;
  /** Without `/audio/speech`; default `https://api.openai.com/v1`. */
  baseUrl?: string;
  model?: string;
  voice?: string;
  /** 0.25–4, 1 by default. */
  speed?: number;
  /** How to speak (tone, pace); `gpt-4o-mini-tts` only. */
  instructions?: string;
  firstByteTimeoutMs?: number;
  idleTimeoutMs?: number;
}

/**
 * OpenAI's speech endpoint (`POST {base}/audio/speech`, `response_format: "pcm"`), one request
 * per sentence, each body streamed into audio chunks as its bytes arrive, so the first words
 * play before the sentence is fully made. Requests run one after another, without waiting for
 * the consumer: the next sentence is being made while the previous one plays.
 */
export class OpenAiTts implements TextToSpeech {
  readonly name = 'openai';
  readonly sampleRate = OPENAI_TTS_RATE;
  readonly model: string;
  readonly voice: string;
  private readonly url: string;
  private readonly opts: OpenAiTtsOptions;

  constructor(opts: OpenAiTtsOptions) {
    this.opts = opts;
    this.model = opts.model ?? DEFAULT_TTS_MODEL;
    this.voice = opts.voice ?? DEFAULT_TTS_VOICE;
    this.url = endpoint(this.name, opts.baseUrl ?? OPENAI_BASE_URL, '/audio/speech');
  }

  /** The JSON body of one sentence's request. */
  requestBody(sentence: string): Record<string, unknown> {
    const body: Record<string, unknown> = {
      model: this.model,
      input: sentence,
      voice: this.voice,
      response_format: 'pcm',
    };
    if (this.opts.speed !== undefined) body.speed = this.opts.speed;
    if (this.opts.instructions !== undefined) body.instructions = this.opts.instructions;
    return body;
  }

  synthesize(text: AsyncIterable<string> | string, signal: AbortSignal): AsyncIterable<AudioChunk> {
    return this.stream(text, signal);
  }

  private async *stream(
    text: AsyncIterable<string> | string,
    signal: AbortSignal,
  ): AsyncGenerator<AudioChunk> {
    if (signal.aborted) return;
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal.addEventListener('abort', onAbort, { once: true });

    const ready: AudioChunk[] = [];
    let finished = false;
    let failure: unknown = null;
    let wake: (() => void) | null = null;
    const notify = () => {
      const w = wake;
      wake = null;
      w?.();
    };
    stop.signal.addEventListener('abort', notify, { once: true });

    // The sentence request in progress, awaited on the way out so no connection outlives us.
    let inflight: Promise<unknown> = Promise.resolve();
    const speakOne = async (sentence: string) => {
      let carry: number | null = null;
      let first = true;
      for await (const bytes of streamPost({
        provider: this.name,
        url: this.url,
        apiKey: this.opts.apiKey,
        body: this.requestBody(sentence),
        signal: stop.signal,
        firstByteTimeoutMs: this.opts.firstByteTimeoutMs ?? DEFAULT_FIRST_BYTE_TIMEOUT_MS,
        idleTimeoutMs: this.opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      })) {
        const [pcm, rest] = toPcm(carry, bytes);
        carry = rest;
        if (pcm.length === 0) continue;
        ready.push(
          first ? { pcm, sampleRate: this.sampleRate, text: sentence } : { pcm, sampleRate: this.sampleRate },
        );
        first = false;
        notify();
      }
    };
    const produce = async () => {
      const sentences = sentencesOf(text);
      try {
        for await (const sentence of sentences) {
          if (stop.signal.aborted) break;
          const pending = speakOne(sentence);
          inflight = pending.catch(() => {});
          await pending;
          if (stop.signal.aborted) break;
        }
      } catch (err) {
        failure = err;
      } finally {
        finished = true;
        notify();
        await sentences.return(undefined).catch(() => {});
      }
    };
    void produce();

    try {
      for (;;) {
        if (stop.signal.aborted) return;
        const chunk = ready.shift();
        if (chunk) {
          yield chunk;
          continue;
        }
        if (finished) {
          if (failure) throw failure;
          return;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      stop.abort();
      await inflight;
    }
  }
}

/**
 * Little-endian 16-bit samples from a body piece plus the byte left over from the previous one;
 * returns the samples and the new odd byte (or null). Pieces split samples anywhere.
 */
export function toPcm(carry: number | null, bytes: Uint8Array): [Int16Array, number | null] {
  const total = bytes.length + (carry === null ? 0 : 1);
  const count = total >> 1;
  const pcm = new Int16Array(count);
  const at = (i: number) => (carry === null ? bytes[i]! : i === 0 ? carry : bytes[i - 1]!);
  for (let s = 0; s < count; s++) {
    const lo = at(2 * s);
    const hi = at(2 * s + 1);
    pcm[s] = (((hi << 8) | lo) << 16) >> 16;
  }
  return [pcm, total & 1 ? at(total - 1) : null];
}

/**
 * `tts: {provider: 'openai'}`: OpenAI speech with `OPENAI_API_KEY` at `OPENAI_BASE_URL`. The
 * agent's `voice` (default `alloy`), the choice's `model` (default `gpt-4o-mini-tts`); options
 * `speed`, `instructions`, `timeoutMs` (connect and first byte, 10 s), `idleTimeoutMs` (30 s).
 */
export function createOpenAiTts(
  choice: ProviderChoice | undefined,
  voice: string | undefined,
  env: ProviderEnv,
): OpenAiTts {
  const key = env.OPENAI_API_KEY;
  if (!key) throw new ProviderError('openai: OPENAI_API_KEY is not set', 'openai', false, 'missing_key');
  return new OpenAiTts({
    apiKey: key,
    baseUrl: env.OPENAI_BASE_URL || OPENAI_BASE_URL,
    model: choice?.model || undefined,
    voice,
    speed: option('openai', choice, 'speed', 'number'),
    instructions: option('openai', choice, 'instructions', 'string'),
    firstByteTimeoutMs: option('openai', choice, 'timeoutMs', 'number'),
    idleTimeoutMs: option('openai', choice, 'idleTimeoutMs', 'number'),
  });
}

const needsKey = (env: ProviderEnv) =>
  env.OPENAI_API_KEY ? { ok: true as const } : { ok: false as const, missing: 'OPENAI_API_KEY is not set' };

/**
 * Registers OpenAI's providers: llm `openai` and tts `openai` (both need `OPENAI_API_KEY`), and
 * llm `openai-compatible`, always available: availability sees only the deployment's env, not
 * the agent's `options.baseUrl`, so a server that cannot be reached fails at call time with a
 * retryable `connect_failed` error naming its URL.
 */
export function registerOpenAi(registry: ProviderRegistry): ProviderRegistry {
  return registry
    .languageModel('openai', createOpenAiChat, needsKey)
    .languageModel('openai-compatible', createOpenAiCompatibleChat)
    .textToSpeech('openai', createOpenAiTts, needsKey);
}
