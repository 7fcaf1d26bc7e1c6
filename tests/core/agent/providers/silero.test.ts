import { describe, expect, it } from 'vitest';
import { SileroVad, sileroAvailable, warmSilero } from '../../../../core/agent/providers/vad/silero.ts';
import { synthesize, voicesAvailable } from '../../../support/voices.ts';

const RATE = 16000;
/** 20 ms frames: not a multiple of the model's 512-sample window, so buffering is exercised. */
const FRAME = 320;
const canRun = sileroAvailable().ok && voicesAvailable.flite;

const UTTERANCES = [
  'Hello, I would like to check the status of my order please.',
  'It was placed last Tuesday under the name Johnson.',
  'Thank you very much for your help today.',
];

interface Scene {
  pcm: Int16Array;
  /** Sample ranges that hold speech. */
  speech: Array<[number, number]>;
}

/** Half a second of silence, then each utterance followed by `gapMs` of silence. */
function scene(gapMs: number): Scene {
  const parts: Int16Array[] = [new Int16Array(RATE / 2)];
  const speech: Array<[number, number]> = [];
  let at = RATE / 2;
  for (const text of UTTERANCES) {
    const voice = trim(synthesize(text, { engine: 'flite', voice: 'rms', sampleRate: RATE }));
    parts.push(voice, new Int16Array((gapMs * RATE) / 1000));
    speech.push([at, at + voice.length]);
    at += voice.length + (gapMs * RATE) / 1000;
  }
  const pcm = new Int16Array(at);
  let o = 0;
  for (const p of parts) {
    pcm.set(p, o);
    o += p.length;
  }
  return { pcm, speech };
}

/** Cuts the engine's own leading and trailing silence, so `speech` ranges are exact. */
function trim(pcm: Int16Array): Int16Array {
  let a = 0;
  let b = pcm.length;
  while (a < b && Math.abs(pcm[a]!) < 200) a++;
  while (b > a && Math.abs(pcm[b - 1]!) < 200) b--;
  return pcm.subarray(a, b);
}

function rms(pcm: Int16Array): number {
  let sum = 0;
  for (const s of pcm) sum += s * s;
  return Math.sqrt(sum / pcm.length);
}

/** Deterministic white noise (xorshift32 → uniform), at `level` RMS. */
function noise(length: number, level: number, seed = 0x9e3779b9): Int16Array {
  const out = new Int16Array(length);
  let x = seed >>> 0;
  const scale = level * Math.sqrt(3); // uniform in [-a, a] has RMS a/√3
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = Math.round(((x / 0xffffffff) * 2 - 1) * scale);
  }
  return out;
}

function mix(a: Int16Array, b: Int16Array): Int16Array {
  const out = new Int16Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = Math.max(-32768, Math.min(32767, a[i]! + b[i]!));
  return out;
}

/** The detector's output for each 20 ms frame. */
function run(vad: SileroVad, pcm: Int16Array): number[] {
  const out: number[] = [];
  for (let i = 0; i + FRAME <= pcm.length; i += FRAME) out.push(vad.process(pcm.subarray(i, i + FRAME)));
  return out;
}

/**
 * Utterances as a session would count them: speech starts at the first voiced frame and ends
 * after `endMs` without one.
 */
function utterances(probs: number[], endMs = 500): number {
  const frameMs = (FRAME / RATE) * 1000;
  let count = 0;
  let inSpeech = false;
  let quietMs = 0;
  for (const p of probs) {
    if (p >= 0.5) {
      if (!inSpeech) count++;
      inSpeech = true;
      quietMs = 0;
    } else if (inSpeech) {
      quietMs += frameMs;
      if (quietMs >= endMs) inSpeech = false;
    }
  }
  return count;
}

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);

describe.skipIf(!canRun)('SileroVad', () => {
  it('is high in speech and low in silence', () => {
    const { pcm, speech } = scene(1000);
    const vad = new SileroVad();
    const probs = run(vad, pcm);
    vad.close();
    const frameOf = (sample: number) => Math.floor(sample / FRAME);
    const inSpeech: number[] = [];
    const inSilence: number[] = [];
    probs.forEach((p, f) => {
      const start = f * FRAME;
      const inside = speech.some(([a, b]) => start >= a && start + FRAME <= b);
      // Silence counts from 300 ms after speech ends (the detector's hangover) to the next start.
      const quiet = speech.every(([a, b]) => start + FRAME <= a || start >= b + 0.3 * RATE);
      if (inside) inSpeech.push(p);
      else if (quiet) inSilence.push(p);
    });
    expect(inSpeech.length).toBeGreaterThan(frameOf(RATE));
    expect(inSilence.length).toBeGreaterThan(frameOf(RATE));
    expect(mean(inSpeech)).toBeGreaterThan(0.7);
    expect(mean(inSilence)).toBeLessThan(0.05);
  });

  it('counts three utterances separated by one-second gaps', () => {
    const vad = new SileroVad();
    expect(utterances(run(vad, scene(1000).pcm))).toBe(3);
    vad.close();
  });

  it('still counts three utterances in white noise at 20 dB SNR, with no false start in noise alone', () => {
    const { pcm, speech } = scene(1000);
    const speechRms = rms(pcm.subarray(speech[0]![0], speech[0]![1]));
    const level = speechRms / 10; // 20 dB below the speech
    const vad = new SileroVad();
    expect(utterances(run(vad, noise(3 * RATE, level, 7)))).toBe(0);
    vad.reset();
    expect(utterances(run(vad, mix(pcm, noise(pcm.length, level))))).toBe(3);
    vad.close();
  });

  it('takes any frame length and reports the newest window', () => {
    const { pcm, speech } = scene(1000);
    const vad = new SileroVad();
    // One sample at a time through the first utterance, then the whole first gap in one call.
    let last = 0;
    for (let i = 0; i < speech[0]![1]; i++) last = vad.process(pcm.subarray(i, i + 1));
    expect(last).toBe(1);
    expect(vad.process(pcm.subarray(speech[0]![1], speech[1]![0]))).toBe(0);
    vad.close();
  });

  it('reset forgets the utterance in progress; a closed detector is reused by the next call', () => {
    const { pcm, speech } = scene(1000);
    const a = new SileroVad();
    expect(a.process(pcm.subarray(0, speech[0]![0] + RATE))).toBe(1);
    a.reset();
    expect(a.process(new Int16Array(512))).toBe(0);
    a.close();
    expect(a.process(pcm.subarray(0, speech[0]![0] + RATE))).toBe(0);
    // The pooled native detector comes back clean.
    const b = new SileroVad();
    expect(b.process(new Int16Array(512))).toBe(0);
    expect(utterances(run(b, pcm))).toBe(3);
    b.close();
  });
});

describe.skipIf(!canRun)('warmSilero', () => {
  it('pre-loads detectors that the next calls take from the pool, working', () => {
    warmSilero(2);
    const { pcm } = scene(1000);
    const a = new SileroVad();
    const b = new SileroVad();
    expect(utterances(run(a, pcm))).toBe(3);
    expect(utterances(run(b, pcm))).toBe(3);
    a.close();
    b.close();
  });
});

describe('sileroAvailable', () => {
  it('finds the model file in the repository and the native addon', () => {
    expect(sileroAvailable()).toEqual({ ok: true });
  });
});
