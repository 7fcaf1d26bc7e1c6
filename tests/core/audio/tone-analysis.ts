/** Measurement helpers for the audio tests: test tones, single-bin DFT, zero-crossing frequency. */

/** A sine of `amplitude` (fraction of full scale) at `frequencyHz`, rounded to int16. */
export function sineInt16(sampleRate: number, frequencyHz: number, durationMs: number, amplitude: number) {
  const length = Math.round((sampleRate * durationMs) / 1000);
  const out = new Int16Array(length);
  for (let i = 0; i < length; i++) {
    out[i] = Math.round(amplitude * 32767 * Math.sin((2 * Math.PI * frequencyHz * i) / sampleRate));
  }
  return out;
}

/** Peak amplitude of the `frequencyHz` component (exact when the window holds whole periods). */
export function toneAmplitude(samples: ArrayLike<number>, sampleRate: number, frequencyHz: number): number {
  let re = 0;
  let im = 0;
  const w = (2 * Math.PI * frequencyHz) / sampleRate;
  for (let i = 0; i < samples.length; i++) {
    re += samples[i]! * Math.cos(w * i);
    im += samples[i]! * Math.sin(w * i);
  }
  return (2 * Math.hypot(re, im)) / samples.length;
}

/** Mean-square energy of the DFT bins strictly above `aboveHz` (bins are sampleRate / length apart). */
export function energyAbove(samples: ArrayLike<number>, sampleRate: number, aboveHz: number): number {
  const n = samples.length;
  let total = 0;
  for (let k = Math.floor((aboveHz * n) / sampleRate) + 1; k <= n / 2; k++) {
    // Goertzel for bin k
    const coeff = 2 * Math.cos((2 * Math.PI * k) / n);
    let s1 = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const s0 = samples[i]! + coeff * s1 - s2;
      s2 = s1;
      s1 = s0;
    }
    const power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    // A real sine of amplitude A puts A²n²/4 in its bin; its mean square is A²/2.
    total += (2 * power) / (n * n) / (k === n / 2 ? 2 : 1);
  }
  return total;
}

/** Frequency from the rising zero crossings, interpolated linearly between samples. */
export function zeroCrossingFrequency(samples: ArrayLike<number>, sampleRate: number): number {
  let first = -1;
  let last = -1;
  let crossings = 0;
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1]!;
    const b = samples[i]!;
    if (a < 0 && b >= 0) {
      const t = i - 1 + -a / (b - a);
      if (first < 0) first = t;
      else crossings++;
      last = t;
    }
  }
  return crossings > 0 ? (crossings * sampleRate) / (last - first) : 0;
}

/** Root mean square. */
export function rms(samples: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i]! * samples[i]!;
  return Math.sqrt(sum / samples.length);
}

export function db(ratio: number): number {
  return 20 * Math.log10(ratio);
}
