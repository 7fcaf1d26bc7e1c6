import type { AudioChunk } from '../types.ts';
import { sentencesOf } from './sentences.ts';
import type { WavPcm } from './spawn-to-file.ts';

/** Synthesises one sentence; resolves `null` when `signal` aborted it. */
export type SynthesizeSentence = (sentence: string, signal: AbortSignal) => Promise<WavPcm | null>;

/**
 * The streaming loop shared by the whole-file engines: splits the incoming text into sentences
 * and synthesises them one at a time, in order, without waiting for the consumer, so sentence
 * two is being made while sentence one plays. Yields one chunk per sentence with its text.
 *
 * Stops early, without throwing, when `signal` aborts or the consumer stops iterating: the
 * running synthesis is aborted (its process killed) and no further sentence is started. An
 * engine failure is thrown after the chunks made before it.
 */
export async function* speakSentences(
  text: AsyncIterable<string> | string,
  signal: AbortSignal,
  synthesize: SynthesizeSentence,
): AsyncGenerator<AudioChunk> {
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  if (signal.aborted) return;
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

  // The synthesis in progress, awaited on the way out so no child outlives the stream.
  let inflight: Promise<unknown> = Promise.resolve();
  const produce = async () => {
    const sentences = sentencesOf(text);
    try {
      for await (const sentence of sentences) {
        if (stop.signal.aborted) break;
        const pending = synthesize(sentence, stop.signal);
        inflight = pending.catch(() => {});
        const audio = await pending;
        if (!audio || stop.signal.aborted) break;
        ready.push({ pcm: audio.pcm, sampleRate: audio.sampleRate, text: sentence });
        notify();
      }
    } catch (err) {
      failure = err;
    } finally {
      finished = true;
      notify();
      // Ends the caller's text stream too when we stopped before it did.
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
    // Waits for the running child to be killed and its temp file removed (not for the caller's
    // text stream, which may be stalled in a read we cannot interrupt).
    await inflight;
  }
}
