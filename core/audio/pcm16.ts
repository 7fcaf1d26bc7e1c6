/**
 * Signed 16-bit little-endian PCM ("L16", what Jambonz streams) as bytes ↔ samples, without
 * copying where the layout allows it, and wire bytes of any `AudioEncoding` ↔ samples.
 */
import type { AudioEncoding } from '../wire/frames.ts';
import { decodeAlaw, decodeMulaw, encodeAlaw, encodeMulaw } from './g711.ts';

/** True on every platform Bun ships for (x64, arm64); checked once so a big-endian host still works. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Assembles `count` little-endian 16-bit samples from `src` into `dst`, on any host. */
function readLe16(src: Uint8Array, dst: Int16Array, count: number): void {
  for (let i = 0, j = 0; i < count; i++, j += 2) dst[i] = ((src[j]! | (src[j + 1]! << 8)) << 16) >> 16;
}

/**
 * Reads L16 bytes as samples. Aligned input on a little-endian host becomes a view (no copy);
 * odd offsets (a view into a larger message) or a big-endian host copy into one reused buffer.
 * One reader per stream: the returned array is valid until the next `read`.
 * A trailing odd byte is ignored: length is floor(bytes.length / 2).
 */
export class Pcm16Reader {
  private scratch = new Int16Array(0);
  private copyView = new Int16Array(0);

  read(bytes: Uint8Array): Int16Array {
    const length = bytes.length >> 1;
    if (LITTLE_ENDIAN && (bytes.byteOffset & 1) === 0) {
      return new Int16Array(bytes.buffer, bytes.byteOffset, length);
    }
    if (this.scratch.length < length)
      this.scratch = new Int16Array(Math.max(length, 2 * this.scratch.length));
    readLe16(bytes, this.scratch, length);
    if (this.copyView.length !== length || this.copyView.buffer !== this.scratch.buffer) {
      this.copyView = this.scratch.subarray(0, length);
    }
    return this.copyView;
  }
}

/**
 * Samples as L16 bytes for the wire: a view over the same memory on a little-endian host
 * (no copy); on a big-endian host a byte-swapped copy.
 */
export function pcm16AsBytes(samples: Int16Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength);
  const out = new Uint8Array(samples.byteLength);
  for (let i = 0; i < samples.length; i++) {
    out[2 * i] = samples[i]! & 0xff;
    out[2 * i + 1] = (samples[i]! >> 8) & 0xff;
  }
  return out;
}

/** Bytes of `encoding` needed for `sampleCount` mono samples. */
export function encodedByteLength(encoding: AudioEncoding, sampleCount: number): number {
  return encoding === 'pcm16' ? sampleCount * 2 : sampleCount;
}

/** Samples carried by `byteLength` bytes of `encoding` (a trailing odd L16 byte is ignored). */
export function encodedSampleCount(encoding: AudioEncoding, byteLength: number): number {
  return encoding === 'pcm16' ? byteLength >> 1 : byteLength;
}

/**
 * Wire bytes of any encoding → samples in `dst`, so a session handles mu-law, A-law and L16
 * with one call. Returns samples written: min(encodedSampleCount(src), dst.length).
 */
export function decodeToPcm16(encoding: AudioEncoding, src: Uint8Array, dst: Int16Array): number {
  if (encoding === 'mulaw') return decodeMulaw(src, dst);
  if (encoding === 'alaw') return decodeAlaw(src, dst);
  const n = Math.min(src.length >> 1, dst.length);
  readLe16(src, dst, n);
  return n;
}

/**
 * Samples → wire bytes of any encoding in `dst`. Returns bytes written:
 * encodedByteLength(encoding, n) where n = samples that fit in `dst`.
 */
export function encodeFromPcm16(encoding: AudioEncoding, src: Int16Array, dst: Uint8Array): number {
  if (encoding === 'mulaw') return encodeMulaw(src, dst);
  if (encoding === 'alaw') return encodeAlaw(src, dst);
  const n = Math.min(src.length, dst.length >> 1);
  for (let i = 0, j = 0; i < n; i++, j += 2) {
    const s = src[i]!;
    dst[j] = s & 0xff;
    dst[j + 1] = (s >> 8) & 0xff;
  }
  return n * 2;
}
