import { describe, expect, it } from 'vitest';
import { cachedSentences, SpeechCache } from '../../../../core/agent/providers/tts/cache.ts';
import type { WavPcm } from '../../../../core/agent/providers/tts/spawn-to-file.ts';

const audio = (samples: number, value = 1): WavPcm => ({
  pcm: new Int16Array(samples).fill(value),
  sampleRate: 16000,
});

describe('SpeechCache', () => {
  it('evicts the least recently used sentences to stay within its bytes', () => {
    const cache = new SpeechCache(3000); // 1,500 samples
    cache.set('a', audio(500));
    cache.set('b', audio(500));
    cache.set('c', audio(500));
    expect(cache.get('a')).toBeDefined(); // a is now the most recent
    cache.set('d', audio(500));
    expect(cache.get('b')).toBeUndefined();
    expect(['a', 'c', 'd'].map((k) => cache.get(k) !== undefined)).toEqual([true, true, true]);
    expect(cache.usedBytes).toBe(3000);
    cache.set('huge', audio(2000));
    expect(cache.get('huge')).toBeUndefined();
    expect(cache.usedBytes).toBe(3000);
  });
});

describe('cachedSentences', () => {
  it('synthesises a sentence once per voice and serves repeats from memory', async () => {
    const cache = new SpeechCache(1 << 20);
    const made: string[] = [];
    const engine = (voice: string) =>
      cachedSentences(
        'test',
        `test/${voice}`,
        async (sentence) => {
          made.push(`${voice}:${sentence}`);
          return audio(100, sentence.length);
        },
        cache,
      );
    const rms = engine('rms');
    const slt = engine('slt');
    const signal = new AbortController().signal;
    const first = await rms('We are open every day.', signal);
    const again = await rms('We are open every day.', signal);
    await slt('We are open every day.', signal);
    expect(again).toBe(first);
    expect(made).toEqual(['rms:We are open every day.', 'slt:We are open every day.']);
  });

  it('does not keep what an aborted synthesis returned', async () => {
    const cache = new SpeechCache(1 << 20);
    let calls = 0;
    const abort = new AbortController();
    const synth = cachedSentences(
      'test',
      'test/v',
      async () => {
        calls++;
        abort.abort();
        return audio(10);
      },
      cache,
    );
    await synth('Hello.', abort.signal);
    await synth('Hello.', new AbortController().signal);
    expect(calls).toBe(2);
  });
});
