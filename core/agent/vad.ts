import { Resampler } from '../audio/resampler.ts';
import type { VoiceDetector } from './providers/types.ts';

/**
 * Voice activity detection: tells a session when the caller starts and stops speaking, so it
 * can cut the agent off (barge-in) and close a turn (endpointing).
 */
export type VadEvent = 'speech_start' | 'speech_end';

export interface Vad {
  /** Feeds one frame; returns an event when the state flips on this frame. */
  process(pcm: Int16Array): VadEvent | null;
  /** Whether the detector is currently in speech. */
  readonly speaking: boolean;
  /** Milliseconds of speech in the current (or last) utterance, up to its last voiced frame. */
  readonly speechMs: number;
  /** Unvoiced time since the last voiced frame (at `speech_end`: the silence that ended it). */
  readonly trailingSilenceMs: number;
  reset(): void;
  close?(): void;
}

export interface EnergyVadOptions {
  sampleRate: number;
  /** Voiced time before speech counts as started (Pipecat's default start is 0.2 s). */
  startMs?: number;
  /** Unvoiced time before speech counts as ended: the endpointing delay. */
  stopMs?: number;
  /** A frame is voiced when its level is this far above the noise floor, in dB. */
  marginDb?: number;
  /** And at least this loud, in dBFS. */
  minDbfs?: number;
}

/**
 * An energy VAD with an adaptive noise floor: no model, no network, a few operations per
 * sample. The floor follows quiet frames quickly and loud ones slowly, so steady line noise
 * is not speech. Good enough for telephony endpointing; a model VAD can replace it.
 */
export class EnergyVad implements Vad {
  private readonly startMs: number;
  private readonly stopMs: number;
  private readonly marginDb: number;
  private readonly minDbfs: number;
  private readonly frameMsAt: (samples: number) => number;
  private floorDb = -70;
  private voicedRunMs = 0;
  private inSpeech = false;
  private utteranceMs = 0;
  private pendingMs = 0;

  constructor(opts: EnergyVadOptions) {
    const rate = opts.sampleRate;
    this.frameMsAt = (samples) => (samples * 1000) / rate;
    this.startMs = opts.startMs ?? 200;
    this.stopMs = opts.stopMs ?? 500;
    this.marginDb = opts.marginDb ?? 12;
    this.minDbfs = opts.minDbfs ?? -45;
  }

  get speaking(): boolean {
    return this.inSpeech;
  }

  get speechMs(): number {
    return this.utteranceMs;
  }

  get trailingSilenceMs(): number {
    return this.pendingMs;
  }

  process(pcm: Int16Array): VadEvent | null {
    const n = pcm.length;
    if (n === 0) return null;
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const s = pcm[i]!;
      sum += s * s;
    }
    const rms = Math.sqrt(sum / n);
    const db = rms > 0 ? 20 * Math.log10(rms / 32768) : -100;
    const voiced = db > this.floorDb + this.marginDb && db > this.minDbfs;
    // Quiet frames pull the floor down fast; loud ones push it up slowly (speech is not noise).
    if (!voiced) this.floorDb += (db - this.floorDb) * (db < this.floorDb ? 0.3 : 0.05);
    else this.floorDb += (db - this.floorDb) * 0.002;
    const frameMs = this.frameMsAt(n);

    if (!this.inSpeech) {
      if (voiced) {
        this.voicedRunMs += frameMs;
        if (this.voicedRunMs >= this.startMs) {
          this.inSpeech = true;
          this.utteranceMs = this.voicedRunMs;
          this.pendingMs = 0;
          return 'speech_start';
        }
      } else {
        this.voicedRunMs = 0;
      }
      return null;
    }
    if (voiced) {
      this.utteranceMs += this.pendingMs + frameMs;
      this.pendingMs = 0;
      return null;
    }
    this.pendingMs += frameMs;
    if (this.pendingMs >= this.stopMs) {
      this.inSpeech = false;
      this.voicedRunMs = 0;
      return 'speech_end';
    }
    return null;
  }

  reset(): void {
    this.inSpeech = false;
    this.voicedRunMs = 0;
    this.utteranceMs = 0;
    this.pendingMs = 0;
  }
}

export interface ModelVadOptions {
  /** Rate of the audio `process` receives (the pipeline rate). */
  sampleRate: number;
  /** Speech probability above which a frame is voiced. */
  threshold?: number;
  /** Probability below which a voiced run counts as silence again (hysteresis). */
  releaseThreshold?: number;
  startMs?: number;
  stopMs?: number;
}

/**
 * Speech start/end from a model's per-frame speech probability (Silero), with the same
 * start/stop timing rules as the energy detector. Resamples when the model's rate differs
 * from the pipeline's.
 */
export class ModelVad implements Vad {
  private readonly startMs: number;
  private readonly stopMs: number;
  private readonly threshold: number;
  private readonly release: number;
  private readonly resampler: Resampler | null;
  private voicedRunMs = 0;
  private inSpeech = false;
  private utteranceMs = 0;
  private pendingMs = 0;

  constructor(
    private readonly detector: VoiceDetector,
    private readonly opts: ModelVadOptions,
  ) {
    this.startMs = opts.startMs ?? 100;
    this.stopMs = opts.stopMs ?? 500;
    this.threshold = opts.threshold ?? 0.5;
    this.release = opts.releaseThreshold ?? Math.max(0, this.threshold - 0.15);
    this.resampler =
      detector.sampleRate === opts.sampleRate ? null : new Resampler(opts.sampleRate, detector.sampleRate);
  }

  get speaking(): boolean {
    return this.inSpeech;
  }

  get speechMs(): number {
    return this.utteranceMs;
  }

  get trailingSilenceMs(): number {
    return this.pendingMs;
  }

  process(pcm: Int16Array): VadEvent | null {
    if (pcm.length === 0) return null;
    const p = this.detector.process(this.resampler ? this.resampler.process(pcm) : pcm);
    const frameMs = (pcm.length * 1000) / this.opts.sampleRate;
    const voiced = p >= (this.inSpeech ? this.release : this.threshold);
    if (!this.inSpeech) {
      if (!voiced) {
        this.voicedRunMs = 0;
        return null;
      }
      this.voicedRunMs += frameMs;
      if (this.voicedRunMs < this.startMs) return null;
      this.inSpeech = true;
      this.utteranceMs = this.voicedRunMs;
      this.pendingMs = 0;
      return 'speech_start';
    }
    if (voiced) {
      this.utteranceMs += this.pendingMs + frameMs;
      this.pendingMs = 0;
      return null;
    }
    if (this.pendingMs === 0) {
      // The flag just fell: the words ended the detector's hangover ago, counted as silence.
      const hangover = Math.min(this.detector.hangoverMs ?? 0, this.utteranceMs);
      this.utteranceMs -= hangover;
      this.pendingMs = hangover;
    }
    this.pendingMs += frameMs;
    if (this.pendingMs < this.stopMs) return null;
    this.inSpeech = false;
    this.voicedRunMs = 0;
    return 'speech_end';
  }

  reset(): void {
    this.inSpeech = false;
    this.voicedRunMs = 0;
    this.utteranceMs = 0;
    this.pendingMs = 0;
    this.detector.reset();
  }

  close(): void {
    this.detector.close?.();
  }
}
