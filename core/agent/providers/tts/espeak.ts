import type { AudioChunk, TextToSpeech } from '../types.ts';
import { cachedSentences } from './cache.ts';
import { spawnToFile } from './spawn-to-file.ts';
import { type SynthesizeSentence, speakSentences } from './speak-sentences.ts';

export interface EspeakOptions {
  /** An espeak-ng voice (`en`, `en-us`, …); the engine default when absent. */
  voice?: string;
  /** Words per minute; the engine default (175) when absent. */
  wordsPerMinute?: number;
  timeoutMs?: number;
}

/**
 * espeak-ng: the fastest offline voice (about 50 ms to first audio) but the least intelligible
 * over the phone; kept because `espeak` stays an accepted provider name. Writes 22050 Hz.
 */
export class EspeakTts implements TextToSpeech {
  readonly name = 'espeak';
  readonly sampleRate = 22050;
  private readonly sentence: SynthesizeSentence;

  constructor(opts: EspeakOptions = {}) {
    const args: string[] = [];
    if (opts.voice) args.push('-v', opts.voice);
    if (opts.wordsPerMinute) args.push('-s', String(Math.round(opts.wordsPerMinute)));
    const timeoutMs = opts.timeoutMs ?? 20_000;
    this.sentence = cachedSentences(this.name, `espeak/${args.join(' ')}`, (sentence, stop) =>
      spawnToFile({
        provider: this.name,
        // `--` ends the options: text starting with `-` is spoken, not parsed.
        argv: (wav) => ['espeak-ng', ...args, '-w', wav, '--', sentence],
        signal: stop,
        timeoutMs,
      }),
    );
  }

  synthesize(text: AsyncIterable<string> | string, signal: AbortSignal): AsyncIterable<AudioChunk> {
    return speakSentences(text, signal, this.sentence);
  }
}
