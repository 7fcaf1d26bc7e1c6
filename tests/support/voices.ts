/**
 * Synthetic callers for speech tests: real text-to-speech engines installed from Debian
 * (flite, festival, espeak-ng; sox converts), and the telephone path a caller's voice takes
 * before a recogniser hears it (16 kHz → 8 kHz → G.711 mu-law → 8 kHz → 16 kHz, with the
 * platform's own resampler and codec), so recognition tests hear what a phone call gives.
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeMulaw, encodeMulaw } from '../../core/audio/g711.ts';
import { Resampler } from '../../core/audio/resampler.ts';

/** A speech engine `synthesize` can drive. */
export type VoiceEngine = 'flite' | 'festival' | 'espeak';

export interface SynthesizeOptions {
  engine: VoiceEngine;
  /**
   * flite: `rms`, `slt`, `awb`, `kal16`, `kal` (default `rms`); festival: a voice function
   * name without its `voice_` prefix, e.g. `kal_diphone` (default: festival's own);
   * espeak: an espeak-ng voice, e.g. `en-us` (default: its own).
   */
  voice?: string;
  /** Rate of the returned samples, Hz. */
  sampleRate: number;
}

function which(bin: string): boolean {
  try {
    execFileSync('which', [bin], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Which engines (and sox, which every engine's output goes through) are installed. */
export const voicesAvailable: Record<VoiceEngine, boolean> = (() => {
  const sox = which('sox');
  return {
    flite: sox && which('flite'),
    festival: sox && which('text2wave'),
    espeak: sox && which('espeak-ng'),
  };
})();

/**
 * Speaks `text` with a real TTS engine and returns mono PCM16 at `sampleRate` (sox converts
 * with its high-quality resampler). Text goes through a file, never stdin.
 */
export function synthesize(text: string, opts: SynthesizeOptions): Int16Array {
  const dir = mkdtempSync(join(tmpdir(), 'sipai-voice-'));
  try {
    const wav = join(dir, 'speech.wav');
    const raw = join(dir, 'speech.raw');
    if (opts.engine === 'flite') {
      execFileSync('flite', ['-voice', opts.voice ?? 'rms', '-t', text, '-o', wav], { stdio: 'ignore' });
    } else if (opts.engine === 'festival') {
      const txt = join(dir, 'speech.txt');
      writeFileSync(txt, `${text}\n`);
      const args = [txt, '-o', wav];
      if (opts.voice) args.push('-eval', `(voice_${opts.voice})`);
      execFileSync('text2wave', args, { stdio: 'ignore' });
    } else {
      const args = ['-w', wav];
      if (opts.voice) args.push('-v', opts.voice);
      args.push(text);
      execFileSync('espeak-ng', args, { stdio: 'ignore' });
    }
    execFileSync(
      'sox',
      [wav, '-t', 'raw', '-r', String(opts.sampleRate), '-e', 'signed', '-b', '16', '-c', '1', raw],
      { stdio: 'ignore' },
    );
    const bytes = readFileSync(raw);
    return new Int16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + (bytes.length & ~1)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function resample(pcm: Int16Array, fromRate: number, toRate: number): Int16Array {
  // Zero padding flushes the filter's group delay so the tail of the speech comes out too.
  const padded = new Int16Array(pcm.length + Math.ceil(fromRate / 100));
  padded.set(pcm);
  return new Resampler(fromRate, toRate).process(padded).slice();
}

/**
 * What a recogniser at 16 kHz hears of 16 kHz speech sent over a G.711 mu-law phone call:
 * downsampled to 8 kHz, mu-law encoded and decoded, upsampled back to 16 kHz.
 */
export function phonePath(pcm16k: Int16Array): Int16Array {
  const narrow = resample(pcm16k, 16000, 8000);
  const mulaw = new Uint8Array(narrow.length);
  encodeMulaw(narrow, mulaw);
  const decoded = new Int16Array(narrow.length);
  decodeMulaw(mulaw, decoded);
  return resample(decoded, 8000, 16000);
}

/** `pcm` with `ms` of silence (zeros) before and after, as an endpointed utterance has. */
export function withSilence(pcm: Int16Array, sampleRate: number, ms: number): Int16Array {
  const pad = Math.round((sampleRate * ms) / 1000);
  const out = new Int16Array(pcm.length + 2 * pad);
  out.set(pcm, pad);
  return out;
}
