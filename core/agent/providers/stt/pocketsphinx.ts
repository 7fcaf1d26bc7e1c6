/**
 * Offline speech-to-text for scripted agents: CMU pocketsphinx (Debian `libpocketsphinx3` +
 * `pocketsphinx-en-us`) in process through `bun:ffi`, constrained to the phrases the agent
 * expects (a JSGF grammar), with out-of-grammar rejection so a caller saying something else is
 * re-prompted instead of being forced into the nearest phrase.
 *
 * How one utterance is scored: the grammar decoder computes every senone on every frame
 * (`-compallsen`), and pocketsphinx normalises each frame's scores by the best senone of that
 * frame, so the best grammar path's score / frames is how far the grammar's explanation of the
 * audio falls behind the best the acoustic model can do with no constraint at all: modest for
 * in-grammar speech, much worse for speech the grammar cannot explain. Below
 * `REJECT_SCORE_PER_FRAME` the result is `rejected`. (Without `-compallsen` the normalisation
 * would use the best *active* senone and hide how badly a path fits.)
 *
 * Decoding runs while the caller speaks (`Utterance`): each block of audio is searched as it
 * arrives, so the end of the turn only waits for the last frames (a few ms), not for the whole
 * utterance (~0.03 × its duration in CPU). Every utterance starts from the same cepstral
 * normalisation (`CMN_PRIOR`), so a result never depends on what a decoder heard before.
 * Decoders cost time and memory to load (grammar ≈ 5 MB / 35 ms, full language model
 * ≈ 95 MB / 0.5–2.5 s), so they live in pools (per
 * grammar, bounded, reused) that an utterance borrows while it is spoken. By default the search
 * runs on decoding threads (`decoder-thread.ts`, Bun Workers holding the pools, one per core)
 * and the event loop keeps pacing every call's audio meanwhile.
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
import { DecoderLane } from './decoder-thread.ts';
import { continuousCommand, modelPaths, pocketsphinxAvailable } from './dictionary.ts';
import { compileGrammar, type Grammar } from './grammar.ts';
import { type Decoded, Decoder, ffiAvailable } from './pocketsphinx-ffi.ts';

/** The only rate the en-us acoustic model takes. */
export const POCKETSPHINX_RATE = 16000;

/**
 * Out-of-grammar threshold on the grammar path's score / frames (pocketsphinx log units per
 * 10 ms frame, each frame normalised by its best senone), for the decoder settings below.
 * Measured with decoding while speaking and the shared normalisation prior, 4 flite voices
 * (rms, slt, awb, kal16), a front-desk grammar of 16 phrases (7 intent examples + the scripted
 * brain's built-ins), each utterance over the phone path (16 kHz → 8 kHz → mu-law → 16 kHz) and
 * at 16 kHz wideband, interleaved on the same decoders, 300 ms of silence around each:
 * - in-grammar, 72 utterances: 72 recognised right; score min −53.9, 5th percentile −50.0;
 * - out-of-grammar, 24 utterances (3 sentences × 4 voices × 2 bands): no grammar path at all
 *   (empty, rejected) or forced into a phrase with score max −72.2.
 * −63 splits the gap. (A phone-loop decoder as the reference, subtracted per frame, separated
 * the same sets no better, 16.7 units against 18.3, for twice the CPU.) espeak-ng's formant
 * voice is too far from the acoustic model (9/16 right in-grammar) and was left out.
 */
export const REJECT_SCORE_PER_FRAME = -63;

/** Logistic width of the confidence mapping, in the same units (±2 widths ≈ 0.12 … 0.88). */
const CONFIDENCE_WIDTH = 4;

/** Confidence ceiling when decoding with the open-vocabulary language model (no phrases). */
const LM_CONFIDENCE_SCALE = 0.5;

/** At most this much audio per utterance is kept (the rest is dropped, logged once). */
export const MAX_UTTERANCE_MS = 15_000;

/** Fewer speech frames than this (after pocketsphinx's own silence removal) is "nothing said". */
const MIN_SPEECH_FRAMES = 10;

/**
 * Decoders per pool key (a grammar, the language model) per decoding thread: every caller
 * speaking at the same moment holds one for their utterance (a grammar decoder ≈ 5 MB);
 * callers beyond it are decoded when one frees up.
 */
export const MAX_DECODERS_PER_KEY = 32;

/**
 * Pruning for the grammar search: tight beams, few active HMMs (a grammar is small); the two
 * best Gaussians per frame (`-topn 2`, a third less CPU than the default 4).
 */
const GRAMMAR_ARGS = {
  beam: '1e-30',
  wbeam: '1e-20',
  pbeam: '1e-25',
  maxhmmpf: '3000',
  compallsen: 'yes',
  topn: '2',
} as const;

/** Open-vocabulary decoding (no phrases): moderate beams on the full LM. */
const LM_ARGS = {
  beam: '1e-40',
  wbeam: '1e-30',
  pbeam: '1e-40',
  maxhmmpf: '5000',
  compallsen: 'yes',
} as const;

// ---------------------------------------------------------------- normalisation

/**
 * The cepstral mean every utterance starts normalising from. pocketsphinx's live normaliser
 * (and its front end's noise tracking) otherwise carry state from one utterance to the next, so a
 * pooled decoder that just heard a wideband (browser) caller mis-hears the next narrowband
 * (phone) one, and the model's default mean fits neither. Each utterance restarts the front end
 * and this prior, so every result is independent of what the decoder heard before. The prior is
 * the midpoint of the running means after 32 utterances (4 flite voices × 4 sentences, twice)
 * over the phone path and at 16 kHz wideband: with it, interleaved phone-band and wideband
 * intents from the same 4 voices were all recognised (36/36 each) and every out-of-grammar
 * sentence rejected (12/12 each).
 */
export const CMN_PRIOR = new Float32Array([
  46.46, 22.47, -18.79, 30.8, -9.27, -6.17, 9.25, -18.34, 6.76, -3.28, -0.81, 5.71, -6.08,
]);

// ---------------------------------------------------------------- pools

interface Pool {
  idle: Decoder[];
  /** Decoders alive (idle + lent). */
  size: number;
  /** Streams open on this pool's grammar: the pool keeps a decoder ready for each (bounded). */
  streams: number;
  waiters: Array<(d: Decoder) => void>;
  create: () => Decoder;
}

const pools = new Map<string, Pool>();

/** Loads and returns a new decoder (synchronous: tens of ms up to ~0.5 s). */
function openDecoder(args: Record<string, string>): Decoder {
  return Decoder.open({ logfn: '/dev/null', ...args });
}

function pool(key: string, create: () => Decoder): Pool {
  let p = pools.get(key);
  if (!p) {
    p = { idle: [], size: 0, streams: 0, waiters: [], create };
    pools.set(key, p);
  }
  return p;
}

/** An idle decoder of `p`, or a new one under the bound; null when all are lent out. */
function tryAcquire(p: Pool): Decoder | null {
  const idle = p.idle.pop();
  if (idle) return idle;
  if (p.size >= MAX_DECODERS_PER_KEY) return null;
  const decoder = p.create();
  p.size++;
  return decoder;
}

/** Borrows a decoder from `p`: an idle one, a new one under the bound, else waits for one. */
function acquire(p: Pool): Decoder | Promise<Decoder> {
  return tryAcquire(p) ?? new Promise((resolve) => p.waiters.push(resolve));
}

function release(p: Pool, decoder: Decoder): void {
  const waiter = p.waiters.shift();
  if (waiter) waiter(decoder);
  else p.idle.push(decoder);
}

/**
 * Live decoders per pool key (`grammar:<hash>`, `lm`) in this thread (for the
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
    openDecoder({ hmm, jsgf: grammar.jsgfPath, dict: grammar.dictPath, ...GRAMMAR_ARGS }),
  );
}

function languageModelPool(): Pool {
  const paths = modelPaths();
  return pool('lm', () => openDecoder({ hmm: paths.hmm, lm: paths.lm, dict: paths.dict, ...LM_ARGS }));
}

// ---------------------------------------------------------------- scoring

/** Maps a per-frame score margin to 0..1 around the rejection threshold (0.5 at it). */
function confidenceOf(perFrame: number): number {
  return 1 / (1 + Math.exp(-(perFrame - REJECT_SCORE_PER_FRAME) / CONFIDENCE_WIDTH));
}

/** What one decode measured, besides the transcript (for logs, tests and calibration). */
export interface Recognition {
  transcript: Transcript;
  /** The best path's score / frames (see `REJECT_SCORE_PER_FRAME`); null where not measured. */
  scorePerFrame: number | null;
  /** Raw hypothesis words of the grammar / LM decoder. */
  hypothesis: string;
  frames: number;
  /** Time from the end of the utterance to its result (ms). */
  decodeMs: number;
  /** Time spent searching while the utterance was fed (ms). */
  searchMs: number;
}

/**
 * A stream on `grammar` opens in this thread: loads a decoder for it now (up to the pool's
 * bound), so neither its first turn nor a moment when every caller speaks at once waits for
 * decoders to load (35 ms each, more under load).
 */
export async function prepareDecoders(grammar: Grammar | null): Promise<void> {
  const p = grammar ? grammarPool(grammar) : languageModelPool();
  p.streams++;
  while (p.size < Math.min(p.streams, MAX_DECODERS_PER_KEY)) {
    const decoder = p.create();
    p.size++;
    release(p, decoder);
    // Loading blocks this thread: let queued work (other calls' audio) run between loads.
    await new Promise<void>((resolve) => setTimeout(resolve, 0));
  }
}

/**
 * A stream on `grammar` closed in this thread: one decoder fewer is kept ready, and an idle one
 * beyond what the open streams need is freed.
 */
export function releaseDecoders(grammar: Grammar | null): void {
  const p = grammar ? grammarPool(grammar) : languageModelPool();
  p.streams = Math.max(0, p.streams - 1);
  while (p.size > Math.max(1, p.streams) && p.idle.length > 0) {
    p.idle.pop()!.close();
    p.size--;
  }
}

/**
 * Starts `decoder` on a new utterance as if it were fresh: the front end's noise and silence
 * tracking restarts (a new stream) and normalisation starts from the shared prior.
 */
function begin(decoder: Decoder): Decoder {
  decoder.setCmnMean(CMN_PRIOR);
  decoder.begin(true);
  return decoder;
}

/**
 * One utterance decoded while it is spoken: `feed` runs the search on each block as it
 * arrives, so `finish` at the end of the turn only flushes the last frames and scores the best
 * path. The decoder is borrowed from this thread's pool for the utterance; when every decoder is
 * lent out, the audio waits and is decoded at `finish` once one is free.
 */
export class Utterance {
  private readonly pool: Pool;
  private decoder: Decoder | null = null;
  /** Audio waiting for a decoder (null while decoding live). */
  private backlog: Int16Array[] | null = null;
  private failure: unknown = null;
  private ended = false;
  /** Time spent searching so far (ms). */
  searchMs = 0;

  constructor(private readonly grammar: Grammar | null) {
    this.pool = grammar ? grammarPool(grammar) : languageModelPool();
    try {
      const decoder = tryAcquire(this.pool);
      if (decoder) this.decoder = begin(decoder);
      else this.backlog = [];
    } catch (err) {
      this.failure = err;
    }
  }

  /** Decodes the next block of 16 kHz audio (kept, not copied, while no decoder is free). */
  feed(pcm16k: Int16Array): void {
    if (this.ended || this.failure !== null || pcm16k.length === 0) return;
    if (this.backlog) {
      this.backlog.push(pcm16k);
      return;
    }
    const started = performance.now();
    try {
      this.decoder!.feed(pcm16k);
    } catch (err) {
      this.failure = err;
    }
    this.searchMs += performance.now() - started;
  }

  /** Ends the utterance: its transcript (or the decoder's error), and the decoder goes back. */
  async finish(): Promise<Recognition> {
    if (this.ended) throw new Error('utterance already finished');
    const started = performance.now();
    if (this.backlog && this.failure === null) {
      const backlog = this.backlog;
      this.backlog = null;
      try {
        this.decoder = begin(await acquire(this.pool));
      } catch (err) {
        this.failure = err;
      }
      for (const block of backlog) this.feed(block);
    }
    this.ended = true;
    try {
      if (this.failure !== null) throw this.failure;
      return this.score(this.decoder!.finish(), performance.now() - started);
    } finally {
      this.releaseDecoder();
    }
  }

  /** Drops the utterance (the stream closed mid-turn) and returns its decoder. */
  abort(): void {
    if (this.ended) return;
    this.ended = true;
    try {
      this.decoder?.finish();
    } catch {
      // Nothing to keep from an abandoned utterance.
    }
    this.releaseDecoder();
  }

  private releaseDecoder(): void {
    if (this.decoder) release(this.pool, this.decoder);
    this.decoder = null;
    this.backlog = null;
  }

  private score(best: Decoded, finishMs: number): Recognition {
    const grammar = this.grammar;
    const done = (transcript: Transcript, scorePerFrame: number | null): Recognition => ({
      transcript,
      scorePerFrame,
      hypothesis: best.text,
      frames: best.frames,
      decodeMs: finishMs,
      searchMs: this.searchMs,
    });
    if (best.frames < MIN_SPEECH_FRAMES) return done({ text: '', final: true }, null);
    if (!best.text) {
      // No grammar path survived the beams over speech: out of grammar (or unintelligible).
      return done({ text: '', final: true, confidence: 0, rejected: grammar !== null }, null);
    }
    const perFrame = best.score / Math.max(1, best.frames);
    if (!grammar) {
      return done(
        { text: best.text, final: true, confidence: LM_CONFIDENCE_SCALE * confidenceOf(perFrame) },
        perFrame,
      );
    }
    const rejected = perFrame < REJECT_SCORE_PER_FRAME;
    const text = rejected ? '' : (grammar.phrases.get(best.text) ?? best.text);
    return done({ text, final: true, confidence: confidenceOf(perFrame), rejected }, perFrame);
  }
}

/**
 * Recognises one whole 16 kHz utterance with this thread's pooled decoders (blocking for the
 * decode): what a stream does block by block, in one go; for calibration and tests.
 * `grammar` null = open-vocabulary LM.
 */
export async function recognize(pcm16k: Int16Array, grammar: Grammar | null): Promise<Recognition> {
  const utterance = new Utterance(grammar);
  utterance.feed(pcm16k);
  return utterance.finish();
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
    let decoding: Decoding;
    if (!useFfi) decoding = new CommandDecoding(command!, grammar);
    else if (this.thread) decoding = new ThreadDecoding(grammar);
    else decoding = new LocalDecoding(grammar);
    // Load this grammar's decoders now rather than on the caller's first turn.
    try {
      await decoding.prepare();
    } catch (err) {
      decoding.close();
      throw asProviderError('pocketsphinx could not load its decoders', err);
    }
    return new PocketsphinxStream(opts.sampleRate, decoding, this.logger);
  }
}

/** Where a stream's utterances are decoded: in this thread, on a decoding thread, or by the CLI. */
interface Decoding {
  prepare(): Promise<void>;
  /** One more block of 16 kHz audio of the current utterance (ownership passes). */
  feed(pcm: Int16Array): void;
  /** Ends the current utterance (null: nothing was fed). */
  finish(signal?: AbortSignal): Promise<Recognition | Transcript | null>;
  abort(): void;
  close(): void;
}

class LocalDecoding implements Decoding {
  private utterance: Utterance | null = null;
  private prepared = false;
  constructor(private readonly grammar: Grammar | null) {}
  async prepare(): Promise<void> {
    await prepareDecoders(this.grammar);
    this.prepared = true;
  }
  feed(pcm: Int16Array): void {
    this.utterance ??= new Utterance(this.grammar);
    this.utterance.feed(pcm);
  }
  async finish(): Promise<Recognition | null> {
    const utterance = this.utterance;
    this.utterance = null;
    return utterance ? utterance.finish() : null;
  }
  abort(): void {
    this.utterance?.abort();
    this.utterance = null;
  }
  close(): void {
    this.abort();
    if (this.prepared) releaseDecoders(this.grammar);
    this.prepared = false;
  }
}

class ThreadDecoding implements Decoding {
  private readonly lane = new DecoderLane();
  private speaking = false;
  constructor(private readonly grammar: Grammar | null) {}
  prepare(): Promise<void> {
    return this.lane.prepare(this.grammar);
  }
  feed(pcm: Int16Array): void {
    if (this.speaking) this.lane.feed(pcm);
    else this.lane.feed(pcm, this.grammar);
    this.speaking = true;
  }
  finish(): Promise<Recognition | null> {
    this.speaking = false;
    return this.lane.finish();
  }
  abort(): void {
    if (this.speaking) this.lane.abort();
    this.speaking = false;
  }
  close(): void {
    this.speaking = false;
    this.lane.release();
  }
}

/** The CLI decodes whole utterances: blocks are kept until the end of the turn. */
class CommandDecoding implements Decoding {
  private blocks: Int16Array[] = [];
  private samples = 0;
  constructor(
    private readonly command: string,
    private readonly grammar: Grammar | null,
  ) {}
  async prepare(): Promise<void> {}
  feed(pcm: Int16Array): void {
    this.blocks.push(pcm);
    this.samples += pcm.length;
  }
  async finish(signal?: AbortSignal): Promise<Transcript | null> {
    if (this.samples === 0) return null;
    const audio = new Int16Array(this.samples);
    let at = 0;
    for (const b of this.blocks) {
      audio.set(b, at);
      at += b.length;
    }
    this.abort();
    return recognizeWithCommand(this.command, audio, this.grammar, signal);
  }
  abort(): void {
    this.blocks = [];
    this.samples = 0;
  }
  close(): void {
    this.abort();
  }
}

/** Audio is sent to the decoder in blocks of this much (fewer messages, still incremental). */
const BLOCK_MS = 100;

class PocketsphinxStream implements SttStream {
  onTranscript?: (t: Transcript) => void;
  private readonly resampler: Resampler | null;
  private readonly blockSamples = (POCKETSPHINX_RATE * BLOCK_MS) / 1000;
  private block: Int16Array;
  private filled = 0;
  /** Samples of the current utterance so far. */
  private length = 0;
  private truncated = false;
  private closed = false;
  private readonly maxSamples = (POCKETSPHINX_RATE * MAX_UTTERANCE_MS) / 1000;

  constructor(
    sampleRate: number,
    private readonly decoding: Decoding,
    private readonly logger: Logger | undefined,
  ) {
    this.resampler = sampleRate === POCKETSPHINX_RATE ? null : new Resampler(sampleRate, POCKETSPHINX_RATE);
    this.block = new Int16Array(this.blockSamples);
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
    let at = 0;
    while (at < n) {
      const take = Math.min(n - at, this.block.length - this.filled);
      this.block.set(input.subarray(at, at + take), this.filled);
      this.filled += take;
      at += take;
      if (this.filled === this.block.length) this.flush();
    }
    this.length += Math.max(0, n);
  }

  /** Hands the filled part of the block to the decoder and starts a new block. */
  private flush(): void {
    if (this.filled === 0) return;
    const full = this.filled === this.block.length;
    this.decoding.feed(full ? this.block : this.block.slice(0, this.filled));
    if (full) this.block = new Int16Array(this.blockSamples);
    this.filled = 0;
  }

  async finalize(signal?: AbortSignal): Promise<Transcript> {
    signal?.throwIfAborted();
    if (this.closed) throw new ProviderError('stt stream is closed', 'pocketsphinx', false);
    this.flush();
    const audioMs = Math.round(this.length / (POCKETSPHINX_RATE / 1000));
    this.length = 0;
    this.truncated = false;
    let result: Recognition | Transcript | null;
    try {
      result = await this.decoding.finish(signal);
    } catch (err) {
      throw asProviderError('pocketsphinx could not decode the utterance', err);
    }
    signal?.throwIfAborted();
    if (result === null) return { text: '', final: true };
    if (!('transcript' in result)) return result;
    this.logger?.debug(
      {
        audioMs,
        decodeMs: Math.round(result.decodeMs),
        searchMs: Math.round(result.searchMs),
        frames: result.frames,
        scorePerFrame: result.scorePerFrame,
        rejected: result.transcript.rejected ?? false,
      },
      'stt utterance decoded',
    );
    return result.transcript;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.length = 0;
    this.filled = 0;
    this.decoding.close();
  }
}

export { decoderThreadPoolSizes } from './decoder-thread.ts';
