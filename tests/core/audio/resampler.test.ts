import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Resampler } from '../../../core/audio/resampler.ts';
import { db, energyAbove, rms, sineInt16, toneAmplitude, zeroCrossingFrequency } from './tone-analysis.ts';

/*
 * Measured on this machine (x64, Bun 1.4.5, one core), 20 ms frames of noise, best of 5 runs:
 *   8k→16k ≈ 10 µs, 16k→8k ≈ 9 µs, 24k→8k ≈ 12 µs, 48k→16k ≈ 25 µs, 48k→8k ≈ 22 µs,
 *   8k→48k ≈ 32 µs per frame (≈ 1 ns per multiply-add). A call resampling 8k→16k in and
 *   24k→8k out spends ≈ 22 µs per 20 ms, about 0.1 % of a core.
 * G.711 encode/decode: ≈ 120-150 ns per 160-sample frame.
 * Speed is reported here, never asserted.
 */

const RATES = [8000, 16000, 24000, 48000] as const;
const PAIRS = RATES.flatMap((from) => RATES.filter((to) => to !== from).map((to) => [from, to] as const));

/** Runs `input` through `resampler` in `chunk`-sample pieces and joins the outputs. */
function runChunked(resampler: Resampler, input: Int16Array, chunk: number): Int16Array {
  const parts: number[] = [];
  for (let i = 0; i < input.length; i += chunk)
    parts.push(...resampler.process(input.subarray(i, i + chunk)));
  return Int16Array.from(parts);
}

function noise(length: number, seed: number): Int16Array {
  const out = new Int16Array(length);
  let state = seed;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = (state >>> 16) - 32768;
  }
  return out;
}

describe('Resampler', () => {
  it.each(PAIRS)('keeps a 1 kHz tone at 0.5 FS in frequency and level, %i Hz → %i Hz', (from, to) => {
    const resampler = new Resampler(from, to);
    const output = runChunked(resampler, sineInt16(from, 1000, 400, 0.5), from / 50);
    expect(output.length).toBe((to * 400) / 1000);
    // Skip 100 ms of warm-up (the filter needs < 4 ms), then measure 250 whole periods.
    const window = output.subarray(to / 10, to / 10 + to / 4);
    const frequencyError = Math.abs(zeroCrossingFrequency(window, to) - 1000) / 1000;
    const levelErrorDb = db(toneAmplitude(window, to, 1000) / (0.5 * 32767));
    expect(frequencyError).toBeLessThan(0.01);
    expect(Math.abs(levelErrorDb)).toBeLessThan(0.5);
  });

  it.each([
    [48000, 8000, 6000],
    [48000, 8000, 4500], // close to the stopband edge (4.1 kHz), away from the Kaiser sidelobe nulls
    [24000, 8000, 6000],
    [16000, 8000, 5000],
    [48000, 16000, 10000],
    [48000, 24000, 14000],
  ])(
    'attenuates a tone above the new Nyquist by at least 40 dB, %i Hz → %i Hz at %i Hz',
    (from, to, tone) => {
      const output = runChunked(new Resampler(from, to), sineInt16(from, tone, 300, 0.5), from / 50);
      const residual = rms(output.subarray(to / 10)) * Math.SQRT2; // as a peak amplitude
      // An all-zero output (below one LSB) reads as -Infinity dB, which passes.
      expect(db(residual / (0.5 * 32767))).toBeLessThanOrEqual(-40);
    },
  );

  it.each([
    [8000, 48000],
    [8000, 24000],
    [8000, 16000],
    [16000, 48000],
  ])('keeps upsampling images 40 dB below the tone, %i Hz → %i Hz', (from, to) => {
    const output = runChunked(new Resampler(from, to), sineInt16(from, 1000, 300, 0.5), from / 50);
    const window = output.subarray(to / 10, to / 10 + to / 10); // 100 ms: 10 Hz bins, whole periods
    const toneMeanSquare = toneAmplitude(window, to, 1000) ** 2 / 2;
    const imageDb = 10 * Math.log10(energyAbove(window, to, from / 2) / toneMeanSquare);
    expect(imageDb).toBeLessThanOrEqual(-40);
  });

  it.each(PAIRS)('gives the same output in 20 ms chunks as in one block, %i Hz → %i Hz', (from, to) => {
    const input = noise(from / 2, from + to); // 500 ms of full-band noise
    const whole = new Resampler(from, to).process(input).slice();
    expect(runChunked(new Resampler(from, to), input, from / 50)).toEqual(whole);
  });

  it('gives the same output for any split of the stream', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...PAIRS),
        fc.array(fc.integer({ min: -32768, max: 32767 }), { maxLength: 1500 }),
        fc.array(fc.nat({ max: 1500 }), { maxLength: 8 }),
        ([from, to], values, cuts) => {
          const input = Int16Array.from(values);
          const whole = new Resampler(from, to).process(input).slice();
          const resampler = new Resampler(from, to);
          const bounds = [
            0,
            ...cuts.map((c) => Math.min(c, input.length)).sort((a, b) => a - b),
            input.length,
          ];
          const parts: number[] = [];
          for (let i = 1; i < bounds.length; i++) {
            const piece = input.subarray(bounds[i - 1], bounds[i]);
            const expected = resampler.outputLength(piece.length);
            const out = resampler.process(piece);
            expect(out.length).toBe(expected);
            parts.push(...out);
          }
          expect(parts).toEqual([...whole]);
          expect(whole.length).toBe(Math.ceil((input.length * to) / from));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('reuses its output view in steady state (no per-frame allocation)', () => {
    const resampler = new Resampler(8000, 16000);
    const frame = sineInt16(8000, 440, 20, 0.3);
    const first = resampler.process(frame);
    expect(first.length).toBe(320);
    expect(resampler.process(frame)).toBe(first);
  });

  it('shares one filter table per rate pair across instances', () => {
    const a = new Resampler(8000, 48000);
    const b = new Resampler(8000, 48000);
    expect(a['bank']).not.toBeNull();
    expect(a['bank']).toBe(b['bank']);
    expect(a['bank']).not.toBe(new Resampler(48000, 8000)['bank']);
  });

  it('adds only a couple of milliseconds of delay', () => {
    for (const [from, to] of PAIRS) expect(new Resampler(from, to).delayMs).toBeLessThan(2.5);
  });

  it('forgets history on reset, matching a fresh instance', () => {
    const input = noise(480, 7);
    const used = new Resampler(24000, 16000);
    used.process(noise(999, 3));
    used.reset();
    expect(used.process(input).slice()).toEqual(new Resampler(24000, 16000).process(input).slice());
  });

  it('passes same-rate audio through untouched', () => {
    const input = noise(160, 1);
    const resampler = new Resampler(16000, 16000);
    expect(resampler.process(input)).toBe(input);
    expect(resampler.outputLength(160)).toBe(160);
    expect(resampler.delayMs).toBe(0);
  });

  it('rejects rates it cannot serve', () => {
    expect(() => new Resampler(0, 8000)).toThrow(RangeError);
    expect(() => new Resampler(8000, 8000.5)).toThrow(RangeError);
    expect(() => new Resampler(1009, 384_000)).toThrow(/phases/);
  });
});
