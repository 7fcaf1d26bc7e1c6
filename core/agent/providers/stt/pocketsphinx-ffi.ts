/**
 * In-process pocketsphinx (Debian `libpocketsphinx3`, 5prealpha API) through `bun:ffi`: one
 * `Decoder` is one loaded model + search (a JSGF grammar, a phone loop or a language model),
 * decoding whole utterances synchronously. Loading costs tens of ms to a second and megabytes
 * to ~90 MB, so callers keep decoders and reuse them (see `pocketsphinx.ts`'s pool).
 *
 * Only non-variadic entry points are bound: the config is parsed with `cmd_ln_parse_r` from an
 * argv array (`cmd_ln_init` is variadic, which FFI cannot call portably).
 */

import { CString, dlopen, FFIType, type Pointer, ptr, read } from 'bun:ffi';
import { libraryPaths } from './dictionary.ts';

type Symbols = ReturnType<typeof load>;

function load(paths: { pocketsphinx: string; sphinxbase: string }) {
  const ps = dlopen(paths.pocketsphinx, {
    ps_args: { args: [], returns: FFIType.ptr },
    ps_init: { args: [FFIType.ptr], returns: FFIType.ptr },
    ps_free: { args: [FFIType.ptr], returns: FFIType.i32 },
    ps_start_utt: { args: [FFIType.ptr], returns: FFIType.i32 },
    ps_start_stream: { args: [FFIType.ptr], returns: FFIType.i32 },
    ps_process_raw: {
      args: [FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.i32],
      returns: FFIType.i32,
    },
    ps_end_utt: { args: [FFIType.ptr], returns: FFIType.i32 },
    ps_get_hyp: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.ptr },
    ps_get_n_frames: { args: [FFIType.ptr], returns: FFIType.i32 },
    ps_get_feat: { args: [FFIType.ptr], returns: FFIType.ptr },
  });
  const base = dlopen(paths.sphinxbase, {
    cmd_ln_parse_r: {
      args: [FFIType.ptr, FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.i32],
      returns: FFIType.ptr,
    },
    cmd_ln_free_r: { args: [FFIType.ptr], returns: FFIType.i32 },
    cmn_live_get: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.void },
    cmn_live_set: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.void },
  });
  return { ...ps.symbols, ...base.symbols };
}

let symbols: Symbols | null = null;
let loadError: Error | null = null;

/**
 * The bound library, loaded once per process; throws (with the reason) where it cannot be
 * loaded, and keeps throwing the same error afterwards.
 */
export function pocketsphinxLibrary(): Symbols {
  if (symbols) return symbols;
  if (loadError) throw loadError;
  const paths = libraryPaths();
  if (!paths) {
    loadError = new Error('libpocketsphinx.so.3 or libsphinxbase.so.3 not found');
    throw loadError;
  }
  try {
    symbols = load(paths);
    return symbols;
  } catch (err) {
    loadError = err instanceof Error ? err : new Error(String(err));
    throw loadError;
  }
}

/** Whether the shared library loads in this process (no throw). */
export function ffiAvailable(): boolean {
  try {
    pocketsphinxLibrary();
    return true;
  } catch {
    return false;
  }
}

function cString(text: string): Buffer {
  return Buffer.from(`${text}\0`, 'utf8');
}

/** Offsets in sphinxbase 5prealpha's `feat_t` (x86-64/arm64 LP64) and `cmn_t`. */
const FEAT_CEPSIZE = 16;
const FEAT_CMN_STRUCT = 88;
const CMN_VECLEN = 28;

/** One utterance's decoding result. */
export interface Decoded {
  /** The best hypothesis, words separated by spaces ("" when nothing was recognised). */
  text: string;
  /** Path score of the hypothesis (log domain, more negative is worse). */
  score: number;
  /** Frames (10 ms) the search processed (speech frames when `-remove_silence` is on). */
  frames: number;
}

/**
 * A loaded pocketsphinx decoder. Not thread-safe and not re-entrant: one utterance at a time
 * (`decode` is synchronous, so within one JS thread that holds by construction).
 */
export class Decoder {
  private ps: Pointer | null;
  private config: Pointer | null;
  private readonly lib: Symbols;
  private readonly scoreOut = new Int32Array(1);
  private cmn: Pointer | null | undefined;
  private cepsize = 0;

  private constructor(lib: Symbols, config: Pointer, ps: Pointer) {
    this.lib = lib;
    this.config = config;
    this.ps = ps;
  }

  /**
   * Loads a decoder from command-line style options without their dashes or with them
   * (`{ hmm: '/…/en-us', jsgf: '/…/g.gram', dict: '/…/g.dict' }`). Throws on bad options or
   * missing files (pocketsphinx's own log says which, on stderr unless `logfn` is set).
   */
  static open(args: Record<string, string>): Decoder {
    const lib = pocketsphinxLibrary();
    const strings: Buffer[] = [];
    for (const [key, value] of Object.entries(args)) {
      strings.push(cString(key.startsWith('-') ? key : `-${key}`), cString(value));
    }
    const argv = new BigUint64Array(Math.max(1, strings.length));
    strings.forEach((s, i) => {
      argv[i] = BigInt(ptr(s));
    });
    const config = lib.cmd_ln_parse_r(null, lib.ps_args(), strings.length, argv, 0);
    if (!config) throw new Error('pocketsphinx rejected the decoder options');
    const ps = lib.ps_init(config);
    if (!ps) {
      lib.cmd_ln_free_r(config);
      throw new Error('pocketsphinx could not load the decoder (model, dictionary or grammar)');
    }
    return new Decoder(lib, config as Pointer, ps as Pointer);
  }

  /** Decodes one whole utterance of 16 kHz PCM16 mono (blocking: CPU work, no I/O). */
  decode(pcm16k: Int16Array): Decoded {
    this.begin();
    this.feed(pcm16k, true);
    return this.finish();
  }

  /**
   * Starts an utterance decoded incrementally: `feed` audio as it arrives, then `finish`. The
   * search runs on each block, so `finish` only flushes the last frames and picks the best path.
   * `fresh` restarts the front end's stream state (noise and silence tracking) first.
   */
  begin(fresh = false): void {
    const ps = this.live();
    if (fresh && this.lib.ps_start_stream(ps) < 0) throw new Error('ps_start_stream failed');
    if (this.lib.ps_start_utt(ps) < 0) throw new Error('ps_start_utt failed');
  }

  /**
   * Decodes one more block of 16 kHz PCM16 mono of the current utterance. `whole` = the block is
   * the entire utterance (batch feature normalisation over it).
   */
  feed(pcm16k: Int16Array, whole = false): void {
    const ps = this.live();
    if (pcm16k.length === 0) return;
    if (this.lib.ps_process_raw(ps, pcm16k, pcm16k.length, 0, whole ? 1 : 0) < 0) {
      this.lib.ps_end_utt(ps);
      throw new Error('ps_process_raw failed');
    }
  }

  /** Ends the current utterance and returns its best hypothesis. */
  finish(): Decoded {
    const ps = this.live();
    const lib = this.lib;
    if (lib.ps_end_utt(ps) < 0) throw new Error('ps_end_utt failed');
    this.scoreOut[0] = 0;
    const hyp = lib.ps_get_hyp(ps, this.scoreOut);
    const text = hyp ? new CString(hyp).toString().trim() : '';
    return { text, score: this.scoreOut[0]!, frames: lib.ps_get_n_frames(ps) };
  }

  /**
   * The live cepstral mean normaliser's state, or null where this library's layout is not the
   * one expected (then `cmnMean`/`setCmnMean` do nothing). sphinxbase's `feat_t` keeps its
   * `cmn_t *` after the fields read below; both sizes are checked before it is trusted.
   */
  private cmnState(): Pointer | null {
    if (this.cmn !== undefined) return this.cmn;
    this.cmn = null;
    const feat = this.lib.ps_get_feat(this.live());
    if (!feat) return null;
    const cepsize = read.i32(feat, FEAT_CEPSIZE);
    const cmn = read.ptr(feat, FEAT_CMN_STRUCT);
    if (cepsize <= 0 || cepsize > 64 || !cmn) return null;
    if (read.i32(cmn as Pointer, CMN_VECLEN) !== cepsize) return null;
    this.cepsize = cepsize;
    this.cmn = cmn as Pointer;
    return this.cmn;
  }

  /** The current cepstral mean (what the next utterance starts normalising from), or null. */
  cmnMean(): Float32Array | null {
    const cmn = this.cmnState();
    if (!cmn) return null;
    const mean = new Float32Array(this.cepsize);
    this.lib.cmn_live_get(cmn, mean);
    return mean;
  }

  /** Sets the cepstral mean the next utterance starts from (see `cmnMean`); false if unsupported. */
  setCmnMean(mean: Float32Array): boolean {
    const cmn = this.cmnState();
    if (!cmn || mean.length !== this.cepsize) return false;
    this.lib.cmn_live_set(cmn, mean);
    return true;
  }

  private live(): Pointer {
    if (!this.ps) throw new Error('decoder is closed');
    return this.ps;
  }

  /** Whether `close` has run. */
  get closed(): boolean {
    return this.ps === null;
  }

  /** Frees the native decoder and its config; idempotent. */
  close(): void {
    if (this.ps) this.lib.ps_free(this.ps);
    if (this.config) this.lib.cmd_ln_free_r(this.config);
    this.ps = null;
    this.config = null;
  }
}
