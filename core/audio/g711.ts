/**
 * ITU-T G.711 (11/88) "Pulse code modulation (PCM) of voice frequencies": mu-law and A-law.
 *
 * Telephony audio (Twilio PCMU, Telnyx PCMU/PCMA) arrives as one G.711 byte per 8 kHz sample.
 * Everything here runs off precomputed tables so the per-sample cost is one load and one store:
 * - decode: 256-entry Int16Array per law (G.711 Tables 1a/2a decoder outputs, scaled to 16 bits);
 * - encode: a table indexed by the top bits of the 16-bit sample. G.711 quantises 14-bit
 *   (mu-law) and 13-bit (A-law) uniform PCM, so the top 14 / 13 bits decide the code and the
 *   tables hold 16384 / 8192 bytes.
 *
 * Negative samples use the ones' complement magnitude (`~x`), which makes the sample's top bits
 * alone decide its code; the round-trip error stays within half a quantisation step either way.
 */

const MULAW_BIAS = 0x84; // G.711 mu-law: segment ends sit at 2^k - 33 in 14-bit units (132 in 16-bit)
const MULAW_CLIP_14 = 8158; // largest 14-bit magnitude before the top code (8159 is the last decision value)

function buildMulawDecode(): Int16Array {
  const table = new Int16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    const u = ~byte & 0xff; // G.711 transmits mu-law codes with all bits inverted
    const exponent = (u >> 4) & 0x07;
    const mantissa = u & 0x0f;
    const magnitude = (((mantissa << 3) + MULAW_BIAS) << exponent) - MULAW_BIAS;
    table[byte] = u & 0x80 ? -magnitude : magnitude;
  }
  return table;
}

function buildAlawDecode(): Int16Array {
  const table = new Int16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    const a = byte ^ 0x55; // G.711 inverts the even bits of A-law codes on the line
    const exponent = (a >> 4) & 0x07;
    const mantissa = a & 0x0f;
    const magnitude = exponent === 0 ? (mantissa << 4) + 8 : ((mantissa << 4) + 0x108) << (exponent - 1);
    table[byte] = a & 0x80 ? magnitude : -magnitude; // A-law: sign bit 1 means positive
  }
  return table;
}

/** mu-law code for a 14-bit magnitude (0..8191), before sign and bit inversion. */
function mulawCode(magnitude14: number): number {
  const biased = Math.min(magnitude14, MULAW_CLIP_14) + (MULAW_BIAS >> 2);
  const segment = 31 - Math.clz32(biased) - 5; // biased is in [33, 8191]: segments 0..7
  const mantissa = (biased >> (segment + 1)) & 0x0f;
  return (segment << 4) | mantissa;
}

/** A-law code for a 13-bit magnitude (0..4095), before sign and even-bit inversion. */
function alawCode(magnitude13: number): number {
  if (magnitude13 < 32) return magnitude13 >> 1; // segments 0 and 1 share a step size (G.711 Table 1a)
  const segment = 31 - Math.clz32(magnitude13) - 4; // [32, 64) -> 1 ... [2048, 4096) -> 7
  return (segment << 4) | ((magnitude13 >> segment) & 0x0f);
}

function buildMulawEncode(): Uint8Array {
  const table = new Uint8Array(1 << 14);
  for (let index = 0; index < table.length; index++) {
    const top = index < 8192 ? index : index - 16384; // signed top 14 bits of the sample
    table[index] = top >= 0 ? ~mulawCode(top) & 0xff : ~(0x80 | mulawCode(~top)) & 0xff;
  }
  return table;
}

function buildAlawEncode(): Uint8Array {
  const table = new Uint8Array(1 << 13);
  for (let index = 0; index < table.length; index++) {
    const top = index < 4096 ? index : index - 8192; // signed top 13 bits of the sample
    table[index] = (top >= 0 ? 0x80 | alawCode(top) : alawCode(~top)) ^ 0x55;
  }
  return table;
}

/** G.711 mu-law byte → 16-bit sample. Shared, read-only by convention. */
export const MULAW_DECODE: Int16Array = buildMulawDecode();
/** G.711 A-law byte → 16-bit sample. Shared, read-only by convention. */
export const ALAW_DECODE: Int16Array = buildAlawDecode();
const MULAW_ENCODE = buildMulawEncode();
const ALAW_ENCODE = buildAlawEncode();

/** One mu-law byte to a 16-bit sample (range ±32124). */
export function mulawToSample(byte: number): number {
  return MULAW_DECODE[byte & 0xff]!;
}

/** One A-law byte to a 16-bit sample (range ±32256). */
export function alawToSample(byte: number): number {
  return ALAW_DECODE[byte & 0xff]!;
}

/** One 16-bit sample to a mu-law byte (inputs beyond ±32767 wrap as int16 would). */
export function sampleToMulaw(sample: number): number {
  return MULAW_ENCODE[(sample >> 2) & 0x3fff]!;
}

/** One 16-bit sample to an A-law byte (inputs beyond ±32767 wrap as int16 would). */
export function sampleToAlaw(sample: number): number {
  return ALAW_ENCODE[(sample >> 3) & 0x1fff]!;
}

/** Decodes mu-law bytes into `dst`. Returns samples written: min(src.length, dst.length). */
export function decodeMulaw(src: Uint8Array, dst: Int16Array): number {
  const n = Math.min(src.length, dst.length);
  for (let i = 0; i < n; i++) dst[i] = MULAW_DECODE[src[i]!]!;
  return n;
}

/** Decodes A-law bytes into `dst`. Returns samples written: min(src.length, dst.length). */
export function decodeAlaw(src: Uint8Array, dst: Int16Array): number {
  const n = Math.min(src.length, dst.length);
  for (let i = 0; i < n; i++) dst[i] = ALAW_DECODE[src[i]!]!;
  return n;
}

/** Encodes 16-bit samples to mu-law into `dst`. Returns bytes written: min(src.length, dst.length). */
export function encodeMulaw(src: Int16Array, dst: Uint8Array): number {
  const n = Math.min(src.length, dst.length);
  for (let i = 0; i < n; i++) dst[i] = MULAW_ENCODE[(src[i]! >> 2) & 0x3fff]!;
  return n;
}

/** Encodes 16-bit samples to A-law into `dst`. Returns bytes written: min(src.length, dst.length). */
export function encodeAlaw(src: Int16Array, dst: Uint8Array): number {
  const n = Math.min(src.length, dst.length);
  for (let i = 0; i < n; i++) dst[i] = ALAW_ENCODE[(src[i]! >> 3) & 0x1fff]!;
  return n;
}
