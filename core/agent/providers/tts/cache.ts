import { Counter } from 'prom-client';
import { registry } from '../../../observability/metrics.ts';
import type { WavPcm } from './spawn-to-file.ts';
import type { SynthesizeSentence } from './speak-sentences.ts';

/** Memory the offline voices' sentence cache may hold (PCM16: 64 MB ≈ 33 min at 16 kHz). */
export const SPEECH_CACHE_BYTES = 64 * 1024 * 1024;

/** Longest sentence cached (longer ones are rarely repeated word for word). */
const MAX_CACHED_CHARS = 400;

const lookups = new Counter({
  name: 'sipai_tts_cache_lookups_total',
  help: 'Sentences the offline voices were asked for, by whether the cache held them',
  labelNames: ['provider', 'result'] as const,
  registers: [registry],
});

/**
 * Synthesised sentences kept in memory, least recently used out first, bounded by bytes. Agents
 * repeat themselves (greetings, scripted replies, "could you say that again?"), and a repeated
 * line then plays at once instead of after another synthesis, which costs flite or festival
 * 100-400 ms of a core per sentence. Audio handed out is shared: consumers must not write into
 * it (the session copies each chunk before playing it).
 */
export class SpeechCache {
  private readonly entries = new Map<string, WavPcm>();
  private bytes = 0;

  constructor(readonly maxBytes: number) {}

  get size(): number {
    return this.entries.size;
  }

  get usedBytes(): number {
    return this.bytes;
  }

  get(key: string): WavPcm | undefined {
    const hit = this.entries.get(key);
    if (hit) {
      // Most recently used last: re-insert.
      this.entries.delete(key);
      this.entries.set(key, hit);
    }
    return hit;
  }

  set(key: string, audio: WavPcm): void {
    const size = audio.pcm.byteLength;
    if (size > this.maxBytes) return;
    const old = this.entries.get(key);
    if (old) {
      this.bytes -= old.pcm.byteLength;
      this.entries.delete(key);
    }
    this.entries.set(key, audio);
    this.bytes += size;
    for (const [k, v] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(k);
      this.bytes -= v.pcm.byteLength;
    }
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }
}

/** The process's cache, shared by every call's offline voice. */
export const speechCache = new SpeechCache(SPEECH_CACHE_BYTES);

/**
 * `synthesize` with the cache in front: `voiceKey` names the engine and everything that changes
 * its output (voice, rate, speed), so only identical audio is reused.
 */
export function cachedSentences(
  provider: string,
  voiceKey: string,
  synthesize: SynthesizeSentence,
  cache: SpeechCache = speechCache,
): SynthesizeSentence {
  return async (sentence, signal) => {
    if (sentence.length > MAX_CACHED_CHARS) return synthesize(sentence, signal);
    const key = `${voiceKey}\n${sentence}`;
    const hit = cache.get(key);
    lookups.inc({ provider, result: hit ? 'hit' : 'miss' });
    if (hit) return hit;
    const audio = await synthesize(sentence, signal);
    if (audio && !signal.aborted) cache.set(key, audio);
    return audio;
  };
}
