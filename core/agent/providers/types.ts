/**
 * The provider seams of the agent brain: speech-to-text, language model, text-to-speech and
 * voice activity detection. One file per vendor or engine implements one of these
 * (`providers/{stt,llm,tts,vad}/<name>.ts`); the registry (`registry.ts`) picks them from the
 * agent's config, so core never switches on a vendor name.
 *
 * Errors: a provider throws `ProviderError` (or any Error, treated as not retryable) and the
 * conversation decides: retry, fall back, apologise, or end the call cleanly.
 */

/** A failure of a speech or language provider, with whether a retry may help. */
export class ProviderError extends Error {
  constructor(
    message: string,
    readonly provider: string,
    readonly retryable: boolean,
    /** A stable code: `missing_dependency`, `missing_key`, `timeout`, `http_429`, … */
    readonly code = 'provider_error',
  ) {
    super(message);
    this.name = 'ProviderError';
  }
}

/** Timing of one recognised or spoken word, in ms from the start of its audio. */
export interface WordTiming {
  word: string;
  startMs: number;
  endMs: number;
}

// ---------------------------------------------------------------- speech-to-text

/** A recognition result. */
export interface Transcript {
  text: string;
  /** Final for this utterance (a partial may still change). */
  final: boolean;
  /** Engine confidence 0..1 where it has one. */
  confidence?: number;
  /** Word timings where the engine has them. */
  words?: WordTiming[];
  /**
   * The recogniser judged the audio to be speech outside what it can understand (a grammar
   * recogniser's out-of-grammar rejection): the agent re-prompts rather than guessing.
   */
  rejected?: boolean;
}

/** One utterance-stream of recognition, owned by one call. */
export interface SttStream {
  /** Feeds caller audio at the stream's `sampleRate`, PCM16 mono. The array may be reused. */
  push(pcm: Int16Array): void;
  /**
   * The caller's turn ended (endpoint): returns the final transcript of the audio pushed since
   * the last `finalize` (empty text when nothing was said). Rejects on a provider failure.
   */
  finalize(signal?: AbortSignal): Promise<Transcript>;
  /** Partial (and, for streaming vendors, early final) results as they come. */
  onTranscript?: (t: Transcript) => void;
  close(): void;
}

export interface SttOptions {
  /** Rate of the audio `push` receives (the pipeline rate). */
  sampleRate: number;
  language: string;
  /**
   * Phrases the caller is expected to say (a scripted agent's intents): a grammar recogniser
   * constrains itself to them; a general one may use them as hints.
   */
  phrases?: string[];
  model?: string;
  options?: Record<string, string | number | boolean>;
}

export interface SpeechToText {
  readonly name: string;
  /** Rates this engine takes natively; the session resamples to the first. */
  readonly sampleRates: readonly number[];
  open(opts: SttOptions): Promise<SttStream>;
}

// ---------------------------------------------------------------- language model

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
  toolCalls?: ToolCall[];
  toolCallId?: string;
}

export interface ToolCall {
  id: string;
  name: string;
  /** JSON text of the arguments, as the model produced it. */
  arguments: string;
}

export interface ToolSpec {
  name: string;
  description: string;
  parameters: Record<string, unknown>;
}

/** What a streaming completion yields: text pieces as they come, then tool calls whole. */
export type LlmChunk = { kind: 'text'; text: string } | { kind: 'tool_call'; call: ToolCall };

export interface LanguageModel {
  readonly name: string;
  /** Streams one completion; ends early (no throw) when `signal` aborts. */
  complete(
    messages: ChatMessage[],
    opts: { tools?: ToolSpec[]; signal: AbortSignal },
  ): AsyncIterable<LlmChunk>;
}

// ---------------------------------------------------------------- text-to-speech

/** A piece of synthesised audio, with the text it speaks where known. */
export interface AudioChunk {
  /** PCM16 mono at `sampleRate`. */
  pcm: Int16Array;
  sampleRate: number;
  /** The text this chunk speaks (a sentence, a word); absent for a continuation. */
  text?: string;
  /** Word timings within this chunk, ms from its start. */
  words?: WordTiming[];
}

export interface TextToSpeech {
  readonly name: string;
  /** The rate of the audio it produces. */
  readonly sampleRate: number;
  /**
   * Speaks a stream of text (sentences or token pieces); yields audio as it is ready. Stops
   * early, without throwing, when `signal` aborts.
   */
  synthesize(text: AsyncIterable<string> | string, signal: AbortSignal): AsyncIterable<AudioChunk>;
  /** Warms the engine (a process, a connection) so the first reply is fast. */
  warm?(): Promise<void>;
  close?(): void;
}

// ---------------------------------------------------------------- voice activity

/** A frame-by-frame speech detector. Injected into the session, one instance per call. */
export interface VoiceDetector {
  readonly name: string;
  /** The rate `process` takes (the session resamples to it if the pipeline differs). */
  readonly sampleRate: number;
  /** Speech probability of the newest audio, 0..1, after feeding one frame of any length. */
  process(pcm: Int16Array): number;
  /**
   * How long after speech stops the detector's own probability falls (a smoothing hangover),
   * in ms: the session counts that time as silence already waited, so a turn ends after the
   * agent's endpointing silence, not that plus the detector's hangover.
   */
  readonly hangoverMs?: number;
  reset(): void;
  close?(): void;
}
