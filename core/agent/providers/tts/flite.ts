import type { AudioChunk, TextToSpeech } from '../types.ts';
import { cachedSentences } from './cache.ts';
import { spawnToFile } from './spawn-to-file.ts';
import { type SynthesizeSentence, speakSentences } from './speak-sentences.ts';

/** flite's compiled-in voices and the rate each writes (read from the files it produces). */
export const FLITE_VOICES = { rms: 16000, slt: 16000, awb: 16000, kal16: 16000, kal: 8000 } as const;
export type FliteVoice = keyof typeof FLITE_VOICES;

export interface FliteOptions {
  /** `rms` (default: the most intelligible of them, 16 kHz), `slt`, `awb`, `kal16`, `kal` (8 kHz). */
  voice?: FliteVoice;
  /** Longest one sentence may take before it is killed. */
  timeoutMs?: number;
}

/**
 * The default offline voice: CMU flite, one short-lived process per sentence (about 150 ms to
 * the first audio for `rms`), so no warm state; sentences said before come from the shared
 * cache (`cache.ts`) at once.
 */
export class FliteTts implements TextToSpeech {
  readonly name = 'flite';
  readonly sampleRate: number;
  readonly voice: FliteVoice;
  private readonly sentence: SynthesizeSentence;

  constructor(opts: FliteOptions = {}) {
    const voice = opts.voice ?? 'rms';
    if (!(voice in FLITE_VOICES)) throw new Error(`unknown flite voice ${voice}`);
    this.voice = voice;
    this.sampleRate = FLITE_VOICES[voice];
    const timeoutMs = opts.timeoutMs ?? 20_000;
    this.sentence = cachedSentences(this.name, `flite/${voice}`, (sentence, stop) =>
      spawnToFile({
        provider: this.name,
        // `-t` takes the next argument as the text, whatever it starts with.
        argv: (wav) => ['flite', '-voice', voice, '-t', sentence, '-o', wav],
        signal: stop,
        timeoutMs,
      }),
    );
  }

  synthesize(text: AsyncIterable<string> | string, signal: AbortSignal): AsyncIterable<AudioChunk> {
    return speakSentences(text, signal, this.sentence);
  }
}
