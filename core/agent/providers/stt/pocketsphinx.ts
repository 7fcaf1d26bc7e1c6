/**
 * Offline speech-to-text for scripted agents: CMU pocketsphinx (Debian `libpocketsphinx3` +
 * `pocketsphinx-en-us`) in process through `bun:ffi`, constrained to the phrases the agent
 * expects (a JSGF grammar), with out-of-grammar rejection so a caller saying something else is
 * re-prompted instead of being forced into the nearest phrase.
 *
 * How one utterance is recognised (`finalize`):
 * 1. the grammar decoder returns the best phrase and its path score;
 * 2. a phone-loop decoder (any phone sequence, the phone bigram model) scores the same audio:
 *    the best the acoustic model can do with no word constraint;
 * 3. (grammar − phone loop) / frames is how much the grammar costs per 10 ms frame: near zero
 *    for in-grammar speech, strongly negative for speech the grammar cannot explain. Below
 *    `REJECT_SCORE_PER_FRAME` the result is `rejected`. Both decoders compute all senones
 *    (`-compallsen`): pocketsphinx normalises each frame's scores by the best *active* senone,
 *    so without it a grammar decoder's score hides how badly it fits.
 *
 * Decoders cost time and memory to load (grammar ≈ 5 MB / 35 ms, context-independent phone
 * loop ≈ 7 MB / 40 ms, full language model ≈ 95 MB / 0.5–2.5 s), so they live in pools (per
 * grammar, bounded, reused, warmed once at creation) that every call's stream borrows only for
 * the synchronous decode. A decode is ~0.11 × the audio's duration in CPU (≈ 200 ms for a 2 s
 * phrase), so by default it runs on one decoding thread (`decoder-thread.ts`, a Bun Worker
 * holding the pools) and the event loop keeps pacing every call's audio meanwhile.
 * With no phrases the full English language model decodes instead (lower confidence, no
 * rejection). Where the shared library cannot load but `pocketsphinx_continuous` exists, a
 * subprocess decodes (no scores, so no confidence and no rejection).
 */

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Resampler } from '../../../audio/resampler.ts';
import type { Logger } from '../../../observability/log.ts';
import {
  ProviderError,
  type SpeechToText,
  type SttOptions,
  type SttStream,
  type Transcript,
} from '../types.ts';
import { ask } from './decoder-thread.ts';
import { continuousCommand, modelPaths, pocketsphinxAvailable } from './dictionary.ts';
import { compileGrammar, type Grammar, phoneLoopDictPath } from './grammar.ts';
import { Decoder, ffiAvailable } from './pocketsphinx-ffi.ts';

/** The only rate the en-us acoustic model takes. */
export const POCKETSPHINX_RATE = 16000;

/**
 * Out-of-grammar threshold on (grammar score − phone-loop score) / frames (pocketsphinx log
 * units per 10 ms frame). Calibrated with the decoder settings below on the phone path
 * (16 kHz speech → 8 kHz → mu-law → 8 kHz → 16 kHz with core/audio, 300 ms of silence around
 * each utterance), 5 voices (flite rms, slt, awb, kal16; festival kal_diphone), a front-desk
 * grammar of 16 phrases (7 intent examples + the scripted brain's built-ins):
 * - in-grammar, 80 utterances: 80 recognised right; margin min −2.2, 5th percentile 0.0,
 *   median +10.8 (the lowest are one-word "yes"/"a person");
 * - out-of-grammar, 30 utterances (6 sentences × 5 voices): 5 with no grammar path at all
 *   (empty, rejected), the other 25 forced into a phrase with margin max −13.1, median −20.9.
 * −7.5 splits the gap (−13.1 … −2.2). espeak-ng's formant voice is too far from the acoustic
 * model (9/16 right in-grammar) and was left out.
 */
export const REJECT_SCORE_PER_FRAME = -7.5;

/** Logistic width of the confidence mapping, in the same units (±2 widths ≈ 0.12 … 0.88). */
const CONFIDENCE_WIDTH = 4;

/** Confidence ceiling when decoding with the open-vocabulary language model (no phrases). */
const LM_CONFIDENCE_SCALE = 0.5;

/** At most this much audio per utterance is kept (the rest is dropped, logged once). */
export const MAX_UTTERANCE_MS = 15_000;

/** Fewer speech frames than this (after pocketsphinx's own silence removal) is "nothing said". */
const MIN_SPEECH_FRAMES = 10;

/** Decoders per pool key (a grammar, the phone loop, the language model). */
export const MAX_DECODERS_PER_KEY = 4;

/** Pruning for the grammar search: tight beams, few active HMMs (a grammar is small). */
const GRAMMAR_ARGS = {
  beam: '1e-30',
  wbeam: '1e-20',
  pbeam: '1e-25',
  maxhmmpf: '3000',
  compallsen: 'yes',
} as const;

/**
 * Context-independent phone loop: 7 MB and ~40 ms to load against 70–90 MB and 0.6 s with
 * triphones, 10–50× cheaper to run, and enough as a reference. (`-topn 2` on both decoders
 * saves ~30 % CPU but misheard "yes" as "bye" once in 80: not worth it.)
 */
const PHONE_LOOP_ARGS = { allphone_ci: 'yes', compallsen: 'yes' } as const;

/** Open-vocabulary decoding (no phrases): moderate beams on the full LM. */
const LM_ARGS = {
  beam: '1e-40',
  wbeam: '1e-30',
  pbeam: '1e-40',
  maxhmmpf: '5000',
  compallsen: 'yes',
} as const;

// ---------------------------------------------------------------- warm-up

let warmClip: Int16Array | null = null;

/**
 * A synthetic phone-band utterance (0.8 s of a vowel-like harmonic sound, 300–3400 Hz, between
 * silences): decoded once by every new decoder so live cepstral mean normalisation starts from
 * telephone audio (a fresh decoder's initial mean fits wideband speech and its first
 * band-limited utterance can come back empty).
 */
export function warmUpClip(): Int16Array {
  if (warmClip) return warmClip;
  const rate = POCKETSPHINX_RATE;
  const silence = Math.round(rate * 0.3);
  const voiced = Math.round(rate * 0.8);
  const clip = new Int16Array(silence * 2 + voiced);
  const f0 = 120;
  const formants = [700, 1200, 2600];
  for (let i = 0; i < voiced; i++) {
    const t = i / rate;
    const pitch = f0 * (1 + 0.05 * Math.sin(2 * Math.PI * 3 * t));
    let sample = 0;
    for (let h = 3; h * f0 <= 3400; h++) {
      const f = h * f0;
      let gain = 0;
      for (const formant of formants) gain += 1 / (1 + ((f - formant) / 150) ** 2);
      sample += gain * Math.sin(2 * Math.PI * h * pitch * t);
    }
    const envelope = Math.min(1, i / 800, (voiced - i) / 800);
    clip[silence + i] = Math.round(3000 * envelope * sample);
  }
  warmClip = clip;
  return clip;
}

// ---------------------------------------------------------------- pools

interface Pool {
  idle: Decoder[];
  /** Decoders alive (idle + lent). */
  size: number;
  waiters: Array<(d: Decoder) => void>;
  create: () => Decoder;
}

const pools = new Map<string, Pool>();

/** Loads, warms and returns a new decoder (synchronous: tens of ms up to ~0.5 s). */
function openWarm(args: Record<string, string>): Decoder {
  const decoder = Decoder.open({ logfn: '/dev/null', ...args });
  decoder.decode(warmUpClip());
  return decoder;
}

function pool(key: string, create: () => Decoder): Pool {
  let p = pools.get(key);
  if (!p) {
    p = { idle: [], size: 0, waiters: [], create };
    pools.set(key, p);
  }
  return p;
}

/** Borrows a decoder from `p`: an idle one, a new one under the bound, else waits for one. */
function acquire(p: Pool): Decoder | Promise<Decoder> {
  const idle = p.idle.pop();
  if (idle) return idle;
  if (p.size < MAX_DECODERS_PER_KEY) {
    const decoder = p.create();
    p.size++;
    return decoder;
  }
  return new Promise((resolve) => p.waiters.push(resolve));
}

function release(p: Pool, decoder: Decoder): void {
  const waiter = p.waiters.shift();
  if (waiter) waiter(decoder);
  else p.idle.push(decoder);
}

async function withDecoder<T>(p: Pool, use: (d: Decoder) => T): Promise<T> {
  const decoder = await acquire(p);
  try {
    return use(decoder);
  } finally {
    release(p, decoder);
  }
}

/**
 * Live decoders per pool key (`grammar:<hash>`, `phone-loop`, `lm`) in this thread (for the
 * decoding thread's, see `decoderThreadPoolSizes`): for tests and metrics.
 */
export function decoderPoolSizes(): Record<string, number> {
  const sizes: Record<string, number> = {};
  for (const [key, p] of pools) sizes[key] = p.size;
  return sizes;
}

/** Frees every idle pooled decoder of this thread (shutdown, tests); call when no decode runs. */
export function closeDecoderPools(): void {
  for (const p of pools.values()) {
    for (const d of p.idle) d.close();
    p.size -= p.idle.length;
    p.idle = [];
  }
  for (const [key, p] of pools) if (p.size === 0 && p.waiters.length === 0) pools.delete(key);
}

function grammarPool(grammar: Grammar): Pool {
  const hmm = modelPaths().hmm;
  return pool(`grammar:${grammar.key}`, () =>
    openWarm({ hmm, jsgf: grammar.jsgfPath, dict: grammar.dictPath, ...GRAMMAR_ARGS }),
  );
}

function phoneLoopPool(): Pool {
  const paths = modelPaths();
  return pool('phone-loop', () =>
    openWarm({ hmm: paths.hmm, allphone: paths.phoneLm, dict: phoneLoopDictPath(), ...PHONE_LOOP_ARGS }),
  );
}

function languageModelPool(): Pool {
  const paths = modelPaths();
  return pool('lm', () => openWarm({ hmm: paths.hmm, lm: paths.lm, dict: paths.dict, ...LM_ARGS }));
}

// ---------------------------------------------------------------- scoring

/** Maps a per-frame score margin to 0..1 around the rejection threshold (0.5 at it). */
function confidenceOf(perFrame: number): number {
  return 1 / (1 + Math.exp(-(perFrame - REJECT_SCORE_PER_FRAME) / CONFIDENCE_WIDTH));
}

/** What one decode measured, besides the transcript (for logs, tests and calibration). */
export interface Recognition {
  transcript: Transcript;
  /** (grammar or LM score − phone-loop score) / frames; null where not measured. */
  scorePerFrame: number | null;
  /** Raw hypothesis words of the grammar / LM decoder. */
  hypothesis: string;
  frames: number;
  decodeMs: number;
}

/** Loads (and warms) the decoders `grammar` needs in this thread, so a first turn is not slow. */
export async function prepareDecoders(grammar: Grammar | null): Promise<void> {
  for (const p of grammar ? [grammarPool(grammar), phoneLoopPool()] : [languageModelPool()]) {
    if (p.size === 0) release(p, await acquire(p));
  }
}

/**
 * Recognises one whole 16 kHz utterance with this thread's pooled decoders (blocking for the
 * decode): the engine of `finalize`, exposed for calibration and tests. `grammar` null =
 * open-vocabulary LM.
 */
export async function recognize(pcm16k: Int16Array, grammar: Grammar | null): Promise<Recognition> {
  const started = performance.now();
  const main = await withDecoder(grammar ? grammarPool(grammar) : languageModelPool(), (d) =>
    d.decode(pcm16k),
  );
  const done = (transcript: Transcript, scorePerFrame: number | null): Recognition => ({
    transcript,
    scorePerFrame,
    hypothesis: main.text,
    frames: main.frames,
    decodeMs: performance.now() - started,
  });
  if (main.frames < MIN_SPEECH_FRAMES) return done({ text: '', final: true }, null);
  if (!main.text) {
    // No grammar path survived the beams over speech: out of grammar (or unintelligible).
    return done({ text: '', final: true, confidence: 0, rejected: grammar !== null }, null);
  }
  const reference = await withDecoder(phoneLoopPool(), (d) => d.decode(pcm16k));
  const perFrame = (main.score - reference.score) / Math.max(1, main.frames, reference.frames);
  if (!grammar) {
    return done(
      { text: main.text, final: true, confidence: LM_CONFIDENCE_SCALE * confidenceOf(perFrame) },
      perFrame,
    );
  }
  const rejected = perFrame < REJECT_SCORE_PER_FRAME;
  const text = rejected ? '' : (grammar.phrases.get(main.text) ?? main.text);
  return done({ text, final: true, confidence: confidenceOf(perFrame), rejected }, perFrame);
}

// ---------------------------------------------------------------- CLI fallback

/**
 * Decodes with the `pocketsphinx_continuous` command (audio through a temp file: a Bun child's
 * stdin is a socket, which the tool cannot read as a file). No scores: no confidence, no
 * rejection; it decodes the audio twice (see below), in a subprocess, off the event loop.
 */
function recognizeWithCommand(
  command: string,
  pcm16k: Int16Array,
  grammar: Grammar | null,
  signal?: AbortSignal,
): Promise<Transcript> {
  const dir = mkdtempSync(join(tmpdir(), 'sipai-pocketsphinx-'));
  const raw = join(dir, 'utterance.raw');
  // A fresh decoder's live normalisation (cepstral mean, noise floor) fits wideband speech, and
  // its first phone-band utterance comes back empty: the file holds the utterance twice, 1 s
  // apart, and the last line (the second copy, decoded with adapted state) is the answer.
  const gap = POCKETSPHINX_RATE;
  const twice = new Int16Array(pcm16k.length * 2 + gap);
  twice.set(pcm16k);
  twice.set(pcm16k, pcm16k.length + gap);
  writeFileSync(raw, new Uint8Array(twice.buffer));
  const paths = modelPaths();
  const args = [
    '-infile',
    raw,
    '-hmm',
    paths.hmm,
    '-logfn',
    '/dev/null',
    '-samprate',
    String(POCKETSPHINX_RATE),
  ];
  if (grammar) args.push('-jsgf', grammar.jsgfPath, '-dict', grammar.dictPath);
  else args.push('-lm', paths.lm, '-dict', paths.dict);
  return new Promise<Transcript>((resolve, reject) => {
    execFile(command, args, { signal, timeout: 30_000, maxBuffer: 1 << 20 }, (err, stdout) => {
      rmSync(dir, { recursive: true, force: true });
      if (err) {
        reject(new ProviderError(`pocketsphinx_continuous failed: ${err.message}`, 'pocketsphinx', true));
        return;
      }
      const lines = stdout
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean);
      const words = lines.at(-1) ?? '';
      const text = grammar ? (grammar.phrases.get(words) ?? words) : words;
      resolve({ text, final: true });
    });
  });
}

// ---------------------------------------------------------------- provider

/** A decoder failure as the conversation expects it (not retryable: the same audio fails again). */
function asProviderError(what: string, err: unknown): ProviderError {
  if (err instanceof ProviderError) return err;
  return new ProviderError(
    `${what}: ${err instanceof Error ? err.message : String(err)}`,
    'pocketsphinx',
    false,
  );
}

export interface PocketsphinxOptions {
  logger?: Logger;
  /** Forces the subprocess path even where the library loads (tests). */
  forceCommand?: boolean;
  /**
   * Decode on the decoding thread (default) rather than on the caller's event loop, where one
   * decode blocks for 50–250 ms.
   */
  thread?: boolean;
}

/**
 * The `pocketsphinx` speech-to-text provider: offline, 16 kHz, grammar-constrained to the
 * agent's phrases with out-of-grammar rejection (see the file's docblock).
 */
export class PocketsphinxStt implements SpeechToText {
  readonly name = 'pocketsphinx';
  readonly sampleRates = [POCKETSPHINX_RATE] as const;
  private readonly logger: Logger | undefined;
  private readonly forceCommand: boolean;
  private readonly thread: boolean;

  constructor(opts: PocketsphinxOptions = {}) {
    this.logger = opts.logger;
    this.forceCommand = opts.forceCommand ?? false;
    this.thread = opts.thread ?? true;
  }

  async open(opts: SttOptions): Promise<SttStream> {
    const available = pocketsphinxAvailable();
    if (!available.ok) {
      throw new ProviderError(
        `pocketsphinx cannot run: install the Debian package ${available.missing}`,
        'pocketsphinx',
        false,
        'missing_dependency',
      );
    }
    const useFfi = !this.forceCommand && ffiAvailable();
    const command = useFfi ? null : continuousCommand();
    if (!useFfi && !command) {
      throw new ProviderError(
        'pocketsphinx cannot run: install the Debian package libpocketsphinx3',
        'pocketsphinx',
        false,
        'missing_dependency',
      );
    }
    const grammar = compileGrammar(opts.phrases ?? []);
    if (grammar && grammar.dropped.length > 0) {
      this.logger?.warn({ words: grammar.dropped }, 'stt phrases have words the dictionary lacks');
    }
    // Load (and warm) this grammar's decoders now rather than on the caller's first turn.
    try {
      if (useFfi && this.thread) await ask({ kind: 'prepare', grammar });
      else if (useFfi) await prepareDecoders(grammar);
    } catch (err) {
      throw asProviderError('pocketsphinx could not load its decoders', err);
    }
    return new PocketsphinxStream(opts.sampleRate, grammar, command, this.thread, this.logger);
  }
}

class PocketsphinxStream implements SttStream {
  onTranscript?: (t: Transcript) => void;
  private readonly resampler: Resampler | null;
  private buffer = new Int16Array(POCKETSPHINX_RATE * 2);
  private length = 0;
  private truncated = false;
  private closed = false;
  private readonly maxSamples = (POCKETSPHINX_RATE * MAX_UTTERANCE_MS) / 1000;

  constructor(
    sampleRate: number,
    private readonly grammar: Grammar | null,
    private readonly command: string | null,
    private readonly thread: boolean,
    private readonly logger: Logger | undefined,
  ) {
    this.resampler = sampleRate === POCKETSPHINX_RATE ? null : new Resampler(sampleRate, POCKETSPHINX_RATE);
  }

  push(pcm: Int16Array): void {
    if (this.closed) return;
    const input = this.resampler ? this.resampler.process(pcm) : pcm;
    const room = this.maxSamples - this.length;
    if (input.length > room && !this.truncated) {
      this.truncated = true;
      this.logger?.warn({ maxUtteranceMs: MAX_UTTERANCE_MS }, 'stt utterance truncated');
    }
    const n = Math.min(room, input.length);
    if (n <= 0) return;
    if (this.length + n > this.buffer.length) {
      const grown = new Int16Array(
        Math.min(this.maxSamples, Math.max(this.length + n, this.buffer.length * 2)),
      );
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    this.buffer.set(input.subarray(0, n), this.length);
    this.length += n;
  }

  async finalize(signal?: AbortSignal): Promise<Transcript> {
    signal?.throwIfAborted();
    if (this.closed) throw new ProviderError('stt stream is closed', 'pocketsphinx', false);
    const audio = this.buffer.slice(0, this.length);
    this.length = 0;
    this.truncated = false;
    if (audio.length === 0) return { text: '', final: true };
    if (this.command) return recognizeWithCommand(this.command, audio, this.grammar, signal);
    const audioMs = Math.round(audio.length / (POCKETSPHINX_RATE / 1000));
    let result: Recognition;
    try {
      result = this.thread
        ? (await ask({ kind: 'recognize', pcm: audio, grammar: this.grammar })).recognition!
        : await recognize(audio, this.grammar);
    } catch (err) {
      throw asProviderError('pocketsphinx could not decode the utterance', err);
    }
    signal?.throwIfAborted();
    this.logger?.debug(
      {
        audioMs,
        decodeMs: Math.round(result.decodeMs),
        frames: result.frames,
        scorePerFrame: result.scorePerFrame,
        rejected: result.transcript.rejected ?? false,
      },
      'stt utterance decoded',
    );
    return result.transcript;
  }

  close(): void {
    this.closed = true;
    this.length = 0;
    this.buffer = new Int16Array(0);
  }
}

/** Live decoders per pool key in the decoding thread (tests, metrics). */
export async function decoderThreadPoolSizes(): Promise<Record<string, number>> {
  return (await ask({ kind: 'sizes' })).sizes ?? {};
}
