/**
 * The microphone, as the realtime socket takes it: this AudioWorklet low-passes the context's
 * audio (44.1 or 48 kHz), resamples it to 16 kHz, and posts 20 ms frames of PCM16 (320 samples,
 * 640 bytes) to the page, which sends each as one binary WebSocket message.
 */

// The AudioWorkletGlobalScope, which TypeScript's DOM library does not describe.
declare abstract class AudioWorkletProcessor {
  readonly port: MessagePort;
  abstract process(inputs: Float32Array[][], outputs: Float32Array[][]): boolean;
}
declare function registerProcessor(name: string, ctor: new () => AudioWorkletProcessor): void;
declare const sampleRate: number;

const TARGET_RATE = 16_000;
const FRAME_SAMPLES = 320;
const TAPS = 63;

/** A windowed-sinc low-pass (Blackman) with its cutoff below the target rate's Nyquist frequency. */
function lowPass(rate: number): Float32Array {
  const cutoff = (0.45 * TARGET_RATE) / rate;
  const taps = new Float32Array(TAPS);
  const mid = (TAPS - 1) / 2;
  let sum = 0;
  for (let i = 0; i < TAPS; i++) {
    const x = i - mid;
    const sinc = x === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * x) / (Math.PI * x);
    const window =
      0.42 - 0.5 * Math.cos((2 * Math.PI * i) / (TAPS - 1)) + 0.08 * Math.cos((4 * Math.PI * i) / (TAPS - 1));
    taps[i] = sinc * window;
    sum += taps[i];
  }
  for (let i = 0; i < TAPS; i++) taps[i] /= sum;
  return taps;
}

class Pcm16Capture extends AudioWorkletProcessor {
  private readonly step = sampleRate / TARGET_RATE;
  private readonly taps = this.step > 1 ? lowPass(sampleRate) : null;
  /** The last TAPS input samples, for the filter. */
  private readonly history = new Float32Array(TAPS);
  private at = 0;
  /** Filtered samples not yet consumed by the resampler, and the position of the next output in them. */
  private filtered: number[] = [];
  private position = 0;
  private frame = new Int16Array(FRAME_SAMPLES);
  private filled = 0;

  process(inputs: Float32Array[][]): boolean {
    const channel = inputs[0]?.[0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) this.filtered.push(this.filter(channel[i]));
    // Linear interpolation between filtered samples at steps of sampleRate / 16 000.
    while (this.position + 1 < this.filtered.length) {
      const i = Math.floor(this.position);
      const frac = this.position - i;
      this.emit(this.filtered[i] * (1 - frac) + this.filtered[i + 1] * frac);
      this.position += this.step;
    }
    const used = Math.floor(this.position);
    this.filtered = this.filtered.slice(used);
    this.position -= used;
    return true;
  }

  private filter(sample: number): number {
    if (!this.taps) return sample;
    this.history[this.at] = sample;
    this.at = (this.at + 1) % TAPS;
    let acc = 0;
    for (let k = 0; k < TAPS; k++) acc += this.taps[k] * this.history[(this.at + k) % TAPS];
    return acc;
  }

  private emit(sample: number): void {
    const s = Math.max(-1, Math.min(1, sample));
    this.frame[this.filled++] = s < 0 ? s * 0x8000 : s * 0x7fff;
    if (this.filled === FRAME_SAMPLES) {
      const buffer = this.frame.buffer;
      this.port.postMessage(buffer, [buffer]);
      this.frame = new Int16Array(FRAME_SAMPLES);
      this.filled = 0;
    }
  }
}

registerProcessor('pcm16-capture', Pcm16Capture);

export {};
