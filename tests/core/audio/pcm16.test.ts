import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mulawToSample } from '../../../core/audio/g711.ts';
import {
  decodeToPcm16,
  encodedByteLength,
  encodedSampleCount,
  encodeFromPcm16,
  Pcm16Reader,
  pcm16AsBytes,
} from '../../../core/audio/pcm16.ts';

/** Little-endian bytes of `samples`, built by hand as the wire would carry them. */
function leBytes(samples: number[], offset = 0): Uint8Array {
  const bytes = new Uint8Array(offset + samples.length * 2);
  samples.forEach((s, i) => {
    bytes[offset + 2 * i] = s & 0xff;
    bytes[offset + 2 * i + 1] = (s >> 8) & 0xff;
  });
  return bytes.subarray(offset);
}

describe('Pcm16Reader', () => {
  it('views aligned L16 bytes without copying', () => {
    const bytes = leBytes([1, -2, 32767, -32768]);
    const samples = new Pcm16Reader().read(bytes);
    expect([...samples]).toEqual([1, -2, 32767, -32768]);
    expect(samples.buffer).toBe(bytes.buffer);
    bytes[0] = 5; // same memory: the view sees the write
    expect(samples[0]).toBe(5);
  });

  it('copies misaligned bytes into one reused buffer', () => {
    const reader = new Pcm16Reader();
    const first = reader.read(leBytes([100, -100, 7], 1));
    expect([...first]).toEqual([100, -100, 7]);
    const second = reader.read(leBytes([-1, 2, 3], 1));
    expect([...second]).toEqual([-1, 2, 3]);
    expect(second).toBe(first); // same length: same view, nothing allocated
  });

  it('reads any bytes at any offset as floor(length / 2) samples', () => {
    const reader = new Pcm16Reader();
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -32768, max: 32767 }), { maxLength: 500 }),
        fc.nat({ max: 3 }),
        fc.boolean(),
        (values, offset, oddTail) => {
          const bytes = leBytes(values, offset);
          const input = oddTail ? Uint8Array.from([...bytes, 0x7f]) : bytes;
          const samples = reader.read(input);
          expect(samples.length).toBe(values.length);
          expect([...samples]).toEqual(values);
        },
      ),
    );
  });
});

describe('pcm16AsBytes', () => {
  it('exposes samples as little-endian bytes over the same memory', () => {
    const samples = Int16Array.from([0x1234, -2]);
    const bytes = pcm16AsBytes(samples);
    expect([...bytes]).toEqual([0x34, 0x12, 0xfe, 0xff]);
    expect(bytes.buffer).toBe(samples.buffer);
  });
});

describe('decodeToPcm16 / encodeFromPcm16', () => {
  it('decodes mu-law wire bytes with the G.711 table', () => {
    const dst = new Int16Array(3);
    expect(decodeToPcm16('mulaw', Uint8Array.from([0xff, 0x80, 0x00]), dst)).toBe(3);
    expect([...dst]).toEqual([mulawToSample(0xff), 32124, -32124]);
  });

  it('round-trips L16 exactly and reports documented lengths for every encoding', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('pcm16', 'mulaw', 'alaw'),
        fc.array(fc.integer({ min: -32768, max: 32767 }), { maxLength: 400 }),
        fc.nat({ max: 900 }),
        (encoding, values, wireLength) => {
          const src = Int16Array.from(values);
          const wire = new Uint8Array(wireLength);
          const written = encodeFromPcm16(encoding, src, wire);
          const fitting = Math.min(src.length, encodedSampleCount(encoding, wireLength));
          expect(written).toBe(encodedByteLength(encoding, fitting));
          const back = new Int16Array(fitting);
          expect(decodeToPcm16(encoding, wire.subarray(0, written), back)).toBe(fitting);
          if (encoding === 'pcm16') expect([...back]).toEqual(values.slice(0, fitting));
          else
            expect(Math.max(0, ...[...back].map((y, i) => Math.abs(y - values[i]!)))).toBeLessThanOrEqual(
              1024,
            );
        },
      ),
    );
  });
});
