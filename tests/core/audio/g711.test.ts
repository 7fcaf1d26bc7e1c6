import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  alawToSample,
  decodeAlaw,
  decodeMulaw,
  encodeAlaw,
  encodeMulaw,
  mulawToSample,
  sampleToAlaw,
  sampleToMulaw,
} from '../../../core/audio/g711.ts';
import { db } from './tone-analysis.ts';

/** Quantisation step (16-bit units) of the segment a mu-law code belongs to: 8 · 2^segment. */
function mulawStep(byte: number): number {
  return 8 << ((~byte >> 4) & 7);
}

/** Quantisation step (16-bit units) of an A-law code's segment: 16 for segments 0-1, then doubling. */
function alawStep(byte: number): number {
  const segment = ((byte ^ 0x55) >> 4) & 7;
  return segment <= 1 ? 16 : 16 << (segment - 1);
}

const laws = [
  {
    name: 'mu-law',
    decode: mulawToSample,
    encode: sampleToMulaw,
    step: mulawStep,
    max: 32124,
    lastDecision: 32636,
  },
  {
    name: 'A-law',
    decode: alawToSample,
    encode: sampleToAlaw,
    step: alawStep,
    max: 32256,
    lastDecision: 32768,
  },
] as const;

describe('G.711 mu-law', () => {
  it('decodes the reference codes of G.711 Table 2a (14-bit values × 4)', () => {
    expect(mulawToSample(0xff)).toBe(0); // positive zero
    expect(mulawToSample(0x7f)).toBe(0); // negative zero
    expect(mulawToSample(0xfe)).toBe(8); // first chord, y = 2
    expect(mulawToSample(0x7e)).toBe(-8);
    expect(mulawToSample(0xf0)).toBe(120); // last code of the first chord, y = 30
    expect(mulawToSample(0xef)).toBe(132); // second chord starts at y = 33
    expect(mulawToSample(0xee)).toBe(148); // step 4 in the second chord, y = 37
    expect(mulawToSample(0x80)).toBe(32124); // y = 8031, the largest output
    expect(mulawToSample(0x00)).toBe(-32124);
  });

  it('re-encodes every decoded byte to itself, except negative zero which becomes positive zero', () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const samples = new Int16Array(256);
    const again = new Uint8Array(256);
    expect(decodeMulaw(bytes, samples)).toBe(256);
    expect(encodeMulaw(samples, again)).toBe(256);
    const changed = [...bytes].filter((b) => again[b] !== b);
    expect(changed).toEqual([0x7f]);
    expect(again[0x7f]).toBe(0xff);
  });
});

describe('G.711 A-law', () => {
  it('decodes the reference codes of G.711 Table 1a (13-bit values × 8)', () => {
    expect(alawToSample(0xd5)).toBe(8); // y = 1
    expect(alawToSample(0x55)).toBe(-8);
    expect(alawToSample(0xd4)).toBe(24); // y = 3
    expect(alawToSample(0xc5)).toBe(264); // segment 2 starts at y = 33
    expect(alawToSample(0xf5)).toBe(528); // segment 3 starts at y = 66
    expect(alawToSample(0xaa)).toBe(32256); // y = 4032, the largest output
    expect(alawToSample(0x2a)).toBe(-32256);
  });

  it('re-encodes every decoded byte to itself', () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const samples = new Int16Array(256);
    const again = new Uint8Array(256);
    decodeAlaw(bytes, samples);
    encodeAlaw(samples, again);
    expect(again).toEqual(bytes);
  });
});

describe.each(laws)('G.711 $name quantiser', ({ decode, encode, step, max, lastDecision }) => {
  it('keeps every 16-bit input within half its segment step (a full step in overload)', () => {
    let worstInRange = 0;
    let worstOverload = 0;
    let previous = Number.NEGATIVE_INFINITY;
    let monotonic = true;
    for (let x = -32768; x <= 32767; x++) {
      const code = encode(x);
      const y = decode(code);
      const ratio = Math.abs(y - x) / step(code);
      if (Math.abs(x) < lastDecision) worstInRange = Math.max(worstInRange, ratio);
      else worstOverload = Math.max(worstOverload, ratio);
      if (y < previous) monotonic = false;
      previous = y;
    }
    expect(monotonic).toBe(true);
    expect(worstInRange).toBeLessThanOrEqual(0.5);
    expect(worstOverload).toBeLessThanOrEqual(1);
    expect(decode(encode(32767))).toBe(max);
    expect(decode(encode(-32768))).toBe(-max);
  });

  it('carries a full-scale sine at an SNR of at least 35 dB', () => {
    let signal = 0;
    let noise = 0;
    for (let i = 0; i < 8000; i++) {
      const x = Math.round(32767 * Math.sin((2 * Math.PI * 1013 * i) / 8000));
      const y = decode(encode(x));
      signal += x * x;
      noise += (y - x) * (y - x);
    }
    expect(db(Math.sqrt(signal / noise))).toBeGreaterThanOrEqual(35);
  });
});

describe('G.711 buffer codecs', () => {
  const codecs = [
    { name: 'mu-law', decode: decodeMulaw, encode: encodeMulaw, one: mulawToSample },
    { name: 'A-law', decode: decodeAlaw, encode: encodeAlaw, one: alawToSample },
  ];

  it.each(codecs)('$name decodes any bytes into any destination, writing min(src, dst) samples', (codec) => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.nat({ max: 2000 }), (bytes, dstLength) => {
        const dst = new Int16Array(dstLength).fill(12345);
        const written = codec.decode(bytes, dst);
        expect(written).toBe(Math.min(bytes.length, dstLength));
        expect([...dst.subarray(0, written)]).toEqual([...bytes.subarray(0, written)].map(codec.one));
        expect(dst.subarray(written).every((v) => v === 12345)).toBe(true);
      }),
    );
  });

  it.each(codecs)('$name encodes any samples, writing min(src, dst) bytes that decode back', (codec) => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -32768, max: 32767 }), { maxLength: 2000 }),
        fc.nat({ max: 2000 }),
        (values, dstLength) => {
          const src = Int16Array.from(values);
          const dst = new Uint8Array(dstLength);
          const written = codec.encode(src, dst);
          expect(written).toBe(Math.min(src.length, dstLength));
          const worst = Math.max(
            0,
            ...[...dst.subarray(0, written)].map((b, i) => Math.abs(codec.one(b) - src[i]!)),
          );
          expect(worst).toBeLessThanOrEqual(1024);
        },
      ),
    );
  });
});
