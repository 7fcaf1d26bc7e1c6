/**
 * In-process pocketsphinx (Debian `libpocketsphinx3`, 5prealpha API) through `bun:ffi`: one
 * `Decoder` is one loaded model + search (a JSGF grammar, a phone loop or a language model),
 * decoding whole utterances synchronously. Loading costs tens of ms to a second and megabytes
 * to ~90 MB, so callers keep decoders and reuse them (see `pocketsphinx.ts`'s pool).
 *
 * Only non-variadic entry points are bound: the config is parsed with `cmd_ln_parse_r` from an
 * argv array (`cmd_ln_init` is variadic, which FFI cannot call portably).
 */

import { CString, dlopen, FFIType, type Pointer, ptr } from 'bun:ffi';
import { libraryPaths } from './dictionary.ts';

type Symbols = ReturnType<typeof load>;

function load(paths: { pocketsphinx: string; sphinxbase: string }) {
  const ps = dlopen(paths.pocketsphinx, {
    ps_args: { args: [], returns: FFIType.ptr },
    ps_init: { args: [FFIType.ptr], returns: FFIType.ptr },
    ps_free: { args: [FFIType.ptr], returns: FFIType.i32 },
    ps_start_utt: { args: [FFIType.ptr], returns: FFIType.i32 },
    ps_process_raw: {
      args: [FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.i32],
      returns: FFIType.i32,
    },
    ps_end_utt: { args: [FFIType.ptr], returns: FFIType.i32 },
    ps_get_hyp: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.ptr },
    ps_get_n_frames: { args: [FFIType.ptr], returns: FFIType.i32 },
  });
  const base = dlopen(paths.sphinxbase, {
    cmd_ln_parse_r: {
      args: [FFIType.ptr, FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.i32],
      returns: FFIType.ptr,
    },
    cmd_ln_free_r: { args: [FFIType.ptr], returns: FFIType.i32 },
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
    const ps = this.ps;
    if (!ps) throw new Error('decoder is closed');
    const lib = this.lib;
    if (lib.ps_start_utt(ps) < 0) throw new Error('ps_start_utt failed');
    if (pcm16k.length > 0) {
      if (lib.ps_process_raw(ps, pcm16k, pcm16k.length, 0, 1) < 0) {
        lib.ps_end_utt(ps);
        throw new Error('ps_process_raw failed');
      }
    }
    if (lib.ps_end_utt(ps) < 0) throw new Error('ps_end_utt failed');
    this.scoreOut[0] = 0;
    const hyp = lib.ps_get_hyp(ps, this.scoreOut);
    const text = hyp ? new CString(hyp).toString().trim() : '';
    return { text, score: this.scoreOut[0]!, frames: lib.ps_get_n_frames(ps) };
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
