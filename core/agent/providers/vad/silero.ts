import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { VoiceDetector } from '../types.ts';

/**
 * The Silero VAD (v4, MIT, shipped in this folder with its licence) run by sherpa-onnx: a
 * neural speech detector that tells speech from noise far better than an energy threshold,
 * for about 0.1 ms of CPU per 32 ms window. Nothing is downloaded at run time.
 *
 * sherpa-onnx's detector reports whether it is in speech (`isDetected`) rather than each
 * window's probability, so `process` returns 1 or 0: the detector's own start and hangover
 * are kept short so the session's endpointing stays in charge of turn timing.
 */

/** The model file, in the repository next to this module. */
export const SILERO_MODEL_PATH = fileURLToPath(new URL('./silero_vad.onnx', import.meta.url));

/** Samples per window the v4 model takes at 16 kHz. */
export const SILERO_WINDOW = 512;
const SAMPLE_RATE = 16000;
/** sherpa-onnx's own limit on one speech segment; the speech flag is unaffected by it. */
const MAX_SEGMENT_SECONDS = 20;

/** The part of sherpa-onnx-node's `Vad` this module uses (the package ships no types). */
interface SherpaVad {
  acceptWaveform(samples: Float32Array): void;
  isDetected(): boolean;
  isEmpty(): boolean;
  pop(): void;
  reset(): void;
}
type SherpaVadClass = new (config: Record<string, unknown>, bufferSizeSeconds: number) => SherpaVad;

let sherpa: { Vad: SherpaVadClass } | null | undefined;
let loadError = '';

function loadSherpa(): { Vad: SherpaVadClass } | null {
  if (sherpa !== undefined) return sherpa;
  try {
    sherpa = createRequire(import.meta.url)('sherpa-onnx-node') as { Vad: SherpaVadClass };
  } catch (err) {
    loadError = (err as Error).message.split('\n')[0] ?? 'load failed';
    sherpa = null;
  }
  return sherpa;
}

/** Whether the detector can run here: the model file and sherpa-onnx's native addon. */
export function sileroAvailable(): { ok: true } | { ok: false; missing: string } {
  if (!existsSync(SILERO_MODEL_PATH)) return { ok: false, missing: `model file ${SILERO_MODEL_PATH}` };
  if (!loadSherpa()) return { ok: false, missing: `npm package sherpa-onnx-node (${loadError})` };
  return { ok: true };
}

export interface SileroOptions {
  /** Speech probability above which a window counts as speech. */
  threshold?: number;
  /** Speech needed before the flag rises, in ms. */
  minSpeechMs?: number;
  /** Silence needed before the flag falls, in ms. */
  minSilenceMs?: number;
}

const DEFAULTS: Required<SileroOptions> = { threshold: 0.5, minSpeechMs: 64, minSilenceMs: 100 };

/**
 * Native detectors left by ended calls, reset and reused: creating one loads an ONNX session
 * (about 50 ms and 6 MB), and sherpa-onnx has no way to share one session between detectors.
 */
const idle = new Map<string, SherpaVad[]>();
const MAX_IDLE = 8;

function keyOf(o: Required<SileroOptions>): string {
  return `${o.threshold}/${o.minSpeechMs}/${o.minSilenceMs}`;
}

function createNative(o: Required<SileroOptions>): SherpaVad {
  const lib = loadSherpa();
  if (!lib) throw new Error(`sherpa-onnx-node is not available: ${loadError}`);
  return new lib.Vad(
    {
      sileroVad: {
        model: SILERO_MODEL_PATH,
        threshold: o.threshold,
        minSpeechDuration: o.minSpeechMs / 1000,
        minSilenceDuration: o.minSilenceMs / 1000,
        windowSize: SILERO_WINDOW,
        // sherpa keeps the samples of the speech segment in progress: this bounds that buffer.
        maxSpeechDuration: MAX_SEGMENT_SECONDS,
      },
      sampleRate: SAMPLE_RATE,
      numThreads: 1,
      debug: false,
    },
    // Room for the longest segment, so the buffer never has to grow (and log that it did).
    MAX_SEGMENT_SECONDS + 4,
  );
}

/**
 * Creates `count` detectors ahead of the first call and leaves them in the pool: loading the
 * model blocks the event loop (about 50 ms idle, several hundred under load), better paid at
 * start-up than when a caller says hello.
 */
export function warmSilero(count = 1, opts: SileroOptions = {}): void {
  const o = { ...DEFAULTS, ...opts };
  const key = keyOf(o);
  const list = idle.get(key) ?? [];
  while (list.length < Math.min(count, MAX_IDLE)) list.push(createNative(o));
  idle.set(key, list);
}

/** One call's Silero detector: buffers input into 512-sample windows at 16 kHz. */
export class SileroVad implements VoiceDetector {
  readonly name = 'silero';
  readonly sampleRate = SAMPLE_RATE;
  private readonly opts: Required<SileroOptions>;
  private native: SherpaVad | null;
  private readonly window = new Float32Array(SILERO_WINDOW);
  private filled = 0;
  private speech = 0;

  /** The flag falls after `minSilenceMs` of windows below the threshold. */
  readonly hangoverMs: number;

  constructor(opts: SileroOptions = {}) {
    this.opts = { ...DEFAULTS, ...opts };
    this.hangoverMs = this.opts.minSilenceMs;
    this.native = idle.get(keyOf(this.opts))?.pop() ?? createNative(this.opts);
  }

  process(pcm: Int16Array): number {
    const native = this.native;
    if (!native) return 0;
    for (let i = 0; i < pcm.length; i++) {
      this.window[this.filled++] = pcm[i]! / 32768;
      if (this.filled === SILERO_WINDOW) {
        this.filled = 0;
        native.acceptWaveform(this.window);
        this.speech = native.isDetected() ? 1 : 0;
        // The detector also collects speech segments we do not use: drop them.
        while (!native.isEmpty()) native.pop();
      }
    }
    return this.speech;
  }

  reset(): void {
    this.native?.reset();
    this.filled = 0;
    this.speech = 0;
  }

  /** Returns the native detector to the pool for the next call. */
  close(): void {
    const native = this.native;
    if (!native) return;
    this.native = null;
    native.reset();
    while (!native.isEmpty()) native.pop();
    const key = keyOf(this.opts);
    const list = idle.get(key) ?? [];
    if (list.length < MAX_IDLE) list.push(native);
    idle.set(key, list);
  }
}
