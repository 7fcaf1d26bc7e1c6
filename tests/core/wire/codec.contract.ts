/**
 * The contract every wire codec keeps (docs/architecture.md, "Conventions", "One interface, one contract suite"): `parse`
 * never throws and returns null or a well-formed frame, whatever it is fed; `serialize` never
 * throws, emits valid JSON when it emits text, and emits binary only where the protocol has it.
 * Each codec's test file runs this with its own fixtures.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type {
  InboundFrame,
  OutboundFrame,
  WireCodec,
  WireMessage,
  WireProtocol,
} from '../../../core/wire/index.ts';
import { sanitizeText } from '../../../core/wire/sanitize.ts';

const FIXTURES = join(import.meta.dirname, '../../fixtures');

/** A recorded text fixture, as the bytes-on-the-wire string (trailing newline dropped). */
export function fixtureText(protocol: WireProtocol, name: string): string {
  return readFileSync(join(FIXTURES, protocol, name), 'utf8').trimEnd();
}

/** A recorded fixture, parsed. */
export function fixtureJson(protocol: WireProtocol, name: string): Record<string, unknown> {
  return JSON.parse(fixtureText(protocol, name));
}

/** A recorded binary fixture as a fresh Uint8Array. */
export function fixtureBytes(protocol: WireProtocol, name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(FIXTURES, protocol, name)));
}

/** Base64 decoded without Buffer, so tests do not check the codec against its own decoder. */
export function base64Bytes(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** Asserts that `out` is text holding exactly the JSON of `expected`, in compact form. */
export function expectJson(out: WireMessage | null, expected: unknown): void {
  expect(typeof out).toBe('string');
  const parsed = JSON.parse(out as string);
  expect(parsed).toEqual(expected);
  expect(JSON.stringify(parsed)).toBe(out);
}

/** `out` as text, failing the test if the codec returned null or binary. */
export function asText(out: WireMessage | null): string {
  expect(typeof out).toBe('string');
  return out as string;
}

/** `out` as bytes, failing the test if the codec returned null or text. */
export function asBytes(out: WireMessage | null): Uint8Array {
  expect(out).toBeInstanceOf(Uint8Array);
  return out as Uint8Array;
}

const ENCODINGS = new Set(['pcm16', 'mulaw', 'alaw']);

function isStringRecord(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  return Object.values(value).every((v) => typeof v === 'string');
}

/** Fails unless `frame` has exactly the fields its kind promises, with the right types. */
export function expectWellFormed(frame: InboundFrame): void {
  const ok = (() => {
    switch (frame.kind) {
      case 'start':
        return (
          typeof frame.callId === 'string' &&
          frame.callId.length > 0 &&
          (frame.streamId === undefined || typeof frame.streamId === 'string') &&
          ENCODINGS.has(frame.encoding) &&
          Number.isInteger(frame.sampleRate) &&
          frame.sampleRate > 0 &&
          (frame.channels === 1 || frame.channels === 2) &&
          isStringRecord(frame.params) &&
          isStringRecord(frame.call)
        );
      case 'audio_in':
        return (
          ENCODINGS.has(frame.encoding) &&
          Number.isInteger(frame.sampleRate) &&
          frame.sampleRate > 0 &&
          frame.data instanceof Uint8Array &&
          frame.data.byteLength > 0 &&
          (frame.encoding !== 'pcm16' || frame.data.byteLength % 2 === 0) &&
          (frame.timestampMs === undefined || (Number.isFinite(frame.timestampMs) && frame.timestampMs >= 0))
        );
      case 'dtmf':
        return (
          /^[0-9*#A-D]$/.test(frame.digit) &&
          (frame.durationMs === undefined || (Number.isFinite(frame.durationMs) && frame.durationMs >= 0))
        );
      case 'mark':
        return (
          typeof frame.name === 'string' &&
          frame.name.length > 0 &&
          (frame.status === 'played' || frame.status === 'cleared')
        );
      case 'end':
        return frame.reason === undefined || typeof frame.reason === 'string';
      case 'text':
        return typeof frame.text === 'string' && frame.text.length > 0;
      case 'clear':
        return Object.keys(frame).length === 1;
      case 'event':
        return (
          typeof frame.name === 'string' &&
          (frame.data === undefined || (typeof frame.data === 'object' && frame.data !== null))
        );
      case 'error':
        return typeof frame.code === 'string' && frame.code.length > 0 && typeof frame.message === 'string';
      default:
        return false;
    }
  })();
  expect(ok, `malformed frame: ${JSON.stringify(frame)}`).toBe(true);
}

/** Any outbound frame, including ones no protocol can carry. */
export const arbitraryOutboundFrame: fc.Arbitrary<OutboundFrame> = fc.oneof(
  fc.record({
    kind: fc.constant('audio_out' as const),
    encoding: fc.constantFrom('pcm16' as const, 'mulaw' as const, 'alaw' as const),
    sampleRate: fc.constantFrom(8000, 16000, 24000, 44100, 48000),
    data: fc.uint8Array({ maxLength: 1000 }),
  }),
  fc.record(
    {
      kind: fc.constant('mark' as const),
      name: fc.string({ unit: 'binary', maxLength: 200 }),
      status: fc.constantFrom('played' as const, 'cleared' as const),
    },
    { requiredKeys: ['kind', 'name'] },
  ),
  fc.constant({ kind: 'clear' as const }),
  fc.record(
    { kind: fc.constant('end' as const), reason: fc.string({ unit: 'binary' }) },
    { requiredKeys: ['kind'] },
  ),
  fc.record({
    kind: fc.constant('transcript' as const),
    text: fc.string({ unit: 'binary' }),
    final: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('agent_text' as const),
    text: fc.string({ unit: 'binary' }),
    final: fc.boolean(),
  }),
  fc.record(
    {
      kind: fc.constant('event' as const),
      name: fc.string({ unit: 'binary' }),
      data: fc.dictionary(fc.string(), fc.jsonValue()),
    },
    { requiredKeys: ['kind', 'name'] },
  ),
  fc.record({
    kind: fc.constant('error' as const),
    code: fc.string({ unit: 'binary' }),
    message: fc.string({ unit: 'binary' }),
  }),
);

/**
 * Mark names a codec must carry: 1-128 UTF-16 code units of any text without control
 * characters or lone surrogates (64 code points of any plane stay within 128 units), plus plain
 * printable ASCII names up to the full 128. Control characters are cleaned out (sanitize.ts).
 */
export const markNames: fc.Arbitrary<string> = fc
  .oneof(
    fc.string({ unit: 'binary', minLength: 1, maxLength: 64 }),
    fc.string({ minLength: 1, maxLength: 128 }),
  )
  .filter((name) => sanitizeText(name, 128) === name);

/** Every path (list of keys/indices) to a value inside a JSON value, the root included. */
function paths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out = [prefix];
  if (typeof value === 'object' && value !== null) {
    for (const [key, child] of Object.entries(value)) {
      out.push(...paths(child, [...prefix, Array.isArray(value) ? Number(key) : key]));
    }
  }
  return out;
}

/** A copy of `value` with the value at `path` replaced (or, at the root, `value` replaced). */
function replaceAt(value: unknown, path: (string | number)[], replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  node[path[path.length - 1]!] = replacement;
  return copy;
}

export interface CodecContract {
  /** A fresh codec, as the edge would create one per socket. */
  make: () => WireCodec;
  protocol: WireProtocol;
  /** Messages that take a fresh codec to its started state. */
  startMessages: WireMessage[];
  /** Recorded inbound text messages, to be fuzzed field by field. */
  inboundFixtures: string[];
  /** Whether the protocol carries binary frames out (Jambonz, native) or never (Twilio, Telnyx). */
  binaryOut: boolean;
}

/** Registers the shared codec properties under `describe(name)`. */
export function runCodecContract(name: string, contract: CodecContract): void {
  const { make, protocol, startMessages, inboundFixtures, binaryOut } = contract;

  /** Parses `raw` with a fresh codec and a started one; both must give null or a good frame. */
  function parsesSafely(raw: WireMessage): void {
    const fresh = make();
    const started = make();
    for (const message of startMessages) started.parse(message);
    for (const codec of [fresh, started]) {
      const frame = codec.parse(raw);
      if (frame !== null) expectWellFormed(frame);
    }
  }

  describe(`${name} contract`, () => {
    it(`identifies itself as the ${protocol} protocol`, () => {
      expect(make().protocol).toBe(protocol);
    });

    it('parses its start messages into a start frame', () => {
      const codec = make();
      const frames = startMessages.map((m) => codec.parse(m));
      expect(frames.some((f) => f?.kind === 'start')).toBe(true);
    });

    it('returns null or a well-formed frame for random bytes', () => {
      fc.assert(fc.property(fc.uint8Array({ maxLength: 4096 }), parsesSafely), { numRuns: 300 });
    });

    it('returns null or a well-formed frame for random strings', () => {
      const strings = fc.oneof(
        fc.string({ unit: 'binary', maxLength: 300 }),
        fc.string({ unit: 'binary', maxLength: 300 }).map((s) => `{${s}`),
      );
      fc.assert(fc.property(strings, parsesSafely), { numRuns: 300 });
    });

    it('returns null or a well-formed frame for random JSON documents', () => {
      const documents = fc.oneof(
        fc.json(),
        fc
          .anything()
          .map((v) => JSON.stringify(v))
          .filter((s): s is string => typeof s === 'string'),
      );
      fc.assert(fc.property(documents, parsesSafely), { numRuns: 300 });
    });

    it('returns null or a well-formed frame for recorded messages with one field replaced', () => {
      const documents = fc
        .constantFrom(...inboundFixtures.map((text) => JSON.parse(text) as unknown))
        .chain((doc) =>
          fc
            .tuple(fc.constantFrom(...paths(doc)), fc.oneof(fc.jsonValue(), fc.constant(undefined)))
            .map(([path, value]) => JSON.stringify(replaceAt(doc, path, value)) ?? 'null'),
        );
      fc.assert(fc.property(documents, parsesSafely), { numRuns: 500 });
    });

    it('carries mark names of up to 128 characters and refuses longer or empty ones', () => {
      const codec = make();
      for (const message of startMessages) codec.parse(message);
      expect(typeof codec.serialize({ kind: 'mark', name: 'm'.repeat(128) })).toBe('string');
      expect(codec.serialize({ kind: 'mark', name: 'm'.repeat(129) })).toBeNull();
      expect(codec.serialize({ kind: 'mark', name: '' })).toBeNull();
    });

    it('serializes any frame to null, valid JSON text, or (where the protocol has it) binary', () => {
      fc.assert(
        fc.property(fc.boolean(), arbitraryOutboundFrame, (startFirst, frame) => {
          const codec = make();
          if (startFirst) for (const message of startMessages) codec.parse(message);
          const out = codec.serialize(frame);
          if (out === null) return;
          if (typeof out === 'string') {
            expect(() => JSON.parse(out)).not.toThrow();
          } else {
            expect(binaryOut).toBe(true);
            expect(out).toBeInstanceOf(Uint8Array);
          }
        }),
        { numRuns: 500 },
      );
    });
  });
}
