/**
 * Strings from the wire reach Postgres (call events, call records). Postgres refuses NUL in
 * `text` and `\u0000` or lone surrogates in `jsonb`, and one refused event used to stop the
 * recorder for every account. These tests pin that no codec lets such a string out, and that
 * the sanitiser's output is always valid Postgres text.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { serializeEventData } from '../../../core/session/timeline.ts';
import { JambonzCodec, NativeCodec, TelnyxCodec, TwilioCodec } from '../../../core/wire/index.ts';
import { SANITIZE_LIMITS, sanitizeJson, sanitizeText } from '../../../core/wire/sanitize.ts';
import { fixtureJson, fixtureText } from './codec.contract.ts';

const NUL = '\u0000';
/** C0 controls the sanitiser removes (all but tab and newline). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const CONTROLS = /[\u0000-\u0008\u000b-\u001f]/;

/** True when Postgres `text` (UTF-8) takes `s` as is: no NUL, and it survives a UTF-8 round trip. */
function validPostgresText(s: string): boolean {
  return !s.includes(NUL) && Buffer.from(s, 'utf8').toString('utf8') === s;
}

/** Every string (keys too) inside a JSON-like value. */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([k, v]) => [k, ...strings(v)]);
}

/** Fails unless every string of `value` is valid Postgres text without control characters. */
function expectClean(value: unknown): void {
  for (const s of strings(value)) {
    expect(validPostgresText(s), JSON.stringify(s)).toBe(true);
    expect(CONTROLS.test(s), JSON.stringify(s)).toBe(false);
  }
}

describe('sanitizeText', () => {
  it('removes NUL, C0 controls but tab and newline, and lone surrogates', () => {
    expect(sanitizeText(`bye${NUL}`, 100)).toBe('bye');
    expect(sanitizeText('a\u0001b\u001fc\td\ne\rf', 100)).toBe('abc\td\nef');
    expect(sanitizeText('x\ud800y\udc00z', 100)).toBe('xyz');
    expect(sanitizeText('ok 😀 \u00e9', 100)).toBe('ok 😀 \u00e9');
  });

  it('cuts to the bound without splitting a surrogate pair', () => {
    expect(sanitizeText('a'.repeat(600), 500)).toHaveLength(500);
    expect(sanitizeText(`ab${'😀'}`, 3)).toBe('ab');
    expect(sanitizeText(`${NUL}ab😀`, 3)).toBe('ab');
  });

  it('always returns valid Postgres text within the bound, for any string', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 300 }),
        fc.integer({ min: 0, max: 400 }),
        (s, max) => {
          const out = sanitizeText(s, max);
          expect(validPostgresText(out)).toBe(true);
          expect(out.length).toBeLessThanOrEqual(max);
        },
      ),
      { numRuns: 2000 },
    );
    // Lone surrogates are not in 'binary' strings: build them explicitly.
    const withSurrogates = fc
      .array(
        fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.constantFrom(0, 0xd800, 0xdbff, 0xdc00, 0xdfff)),
        {
          maxLength: 100,
        },
      )
      .map((codes) => String.fromCharCode(...codes));
    fc.assert(
      fc.property(withSurrogates, (s) => {
        expect(validPostgresText(sanitizeText(s, 1000))).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('leaves clean text untouched', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        const clean = s.replace(new RegExp(CONTROLS.source, 'g'), '');
        expect(sanitizeText(clean, 1000)).toBe(clean);
      }),
    );
  });
});

describe('sanitizeJson and the timeline serialisation', () => {
  it('cleans every string and key, any depth, and turns what JSON cannot hold into null', () => {
    const out = sanitizeJson({
      [`k${NUL}`]: [`v${NUL}`, { deep: `\ud800x` }],
      n: Number.NaN,
      b: 10n,
      at: new Date(0),
    });
    expect(out).toEqual({ k: ['v', { deep: 'x' }], n: null, b: null, at: '1970-01-01T00:00:00.000Z' });
  });

  it('serialises any event data to JSON that holds only valid Postgres text', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ unit: 'binary' }), fc.jsonValue()), (data) => {
        const json = serializeEventData(data as Record<string, unknown>);
        expect(json).not.toContain('\\u0000');
        expectClean(JSON.parse(json));
      }),
      { numRuns: 500 },
    );
    const cyclic: Record<string, unknown> = { reason: `bye${NUL}` };
    cyclic.self = cyclic;
    expect(() => serializeEventData(cyclic)).not.toThrow();
    expect(JSON.parse(serializeEventData({ detail: `bye${NUL}` }))).toEqual({ detail: 'bye' });
  });
});

describe('every codec cleans what it lets out', () => {
  const long = 'x'.repeat(5000);

  it('native: stop reasons, mark names and text', () => {
    const codec = new NativeCodec();
    codec.parse(fixtureText('native', 'start.json'));
    expect(codec.parse(JSON.stringify({ t: 'stop', reason: `bye${NUL}` }))).toEqual({
      kind: 'end',
      reason: 'bye',
    });
    expect(codec.parse(JSON.stringify({ t: 'stop', reason: NUL }))).toEqual({ kind: 'end' });
    const cut = codec.parse(JSON.stringify({ t: 'stop', reason: long }));
    expect(cut).toEqual({ kind: 'end', reason: 'x'.repeat(256) });
    expect(codec.parse(JSON.stringify({ t: 'mark', name: `utt-1${NUL}` }))).toEqual({
      kind: 'mark',
      name: 'utt-1',
      status: 'played',
    });
    expect(codec.parse(JSON.stringify({ t: 'mark', name: NUL }))).toBeNull();
    expect(codec.parse(JSON.stringify({ t: 'text', text: `hi${NUL}\ud800 there` }))).toEqual({
      kind: 'text',
      text: 'hi there',
    });
  });

  it('twilio: mark names and custom parameters', () => {
    const codec = new TwilioCodec();
    const start = fixtureJson('twilio', 'start.json') as { start: Record<string, unknown> };
    const frame = codec.parse(
      JSON.stringify({
        ...start,
        start: {
          ...start.start,
          customParameters: { [`a${NUL}b`]: `v${NUL}`, long, n: 7 },
          tracks: [`in${NUL}`],
        },
      }),
    );
    expect(frame).toMatchObject({ kind: 'start', params: { ab: 'v', n: '7' }, call: { tracks: 'in' } });
    expect(frame?.kind === 'start' && frame.params.long).toHaveLength(SANITIZE_LIMITS.value);
    expectClean(frame);
    const mark = { event: 'mark', streamSid: 'MZ1', mark: { name: `utt-1${NUL}` } };
    expect(codec.parse(JSON.stringify(mark))).toEqual({ kind: 'mark', name: 'utt-1', status: 'played' });
  });

  it('telnyx: error messages, mark names and call fields', () => {
    const codec = new TelnyxCodec();
    const start = fixtureJson('telnyx', 'start.json') as { start: Record<string, unknown> };
    const frame = codec.parse(
      JSON.stringify({
        ...start,
        start: {
          ...start.start,
          from: `+1${NUL}`,
          custom_parameters: { k: `v${NUL}\udc00` },
          client_state: long,
        },
      }),
    );
    expect(frame).toMatchObject({ kind: 'start', params: { k: 'v' }, call: { from: '+1' } });
    expectClean(frame);
    const error = { event: 'error', payload: { code: 100003, detail: `bad${NUL} frame` } };
    expect(codec.parse(JSON.stringify(error))).toEqual({
      kind: 'error',
      code: 'telnyx_100003',
      message: 'bad frame',
    });
    const longError = codec.parse(JSON.stringify({ event: 'error', payload: { code: 1, detail: long } }));
    expect(longError?.kind === 'error' && longError.message).toHaveLength(SANITIZE_LIMITS.reason);
    const onlyNul = codec.parse(JSON.stringify({ event: 'error', payload: { code: 1, detail: NUL } }));
    expect(onlyNul).toMatchObject({ kind: 'error', message: 'Telnyx stream error' });
    const mark = { event: 'mark', mark: { name: `utt-1${NUL}` } };
    expect(codec.parse(JSON.stringify(mark))).toEqual({ kind: 'mark', name: 'utt-1', status: 'played' });
  });

  it('jambonz: metadata, mark names and playDone data', () => {
    const codec = new JambonzCodec({ outSampleRate: 8000 });
    const metadata = fixtureJson('jambonz', 'metadata.json');
    const frame = codec.parse(
      JSON.stringify({ ...metadata, from: `+1${NUL}`, [`tag${NUL}`]: `x${NUL}`, sipReason: long }),
    );
    expect(frame).toMatchObject({ kind: 'start', params: { tag: 'x' }, call: { from: '+1' } });
    expect(frame?.kind === 'start' && frame.call.sipReason).toHaveLength(SANITIZE_LIMITS.value);
    expectClean(frame);
    const mark = { type: 'mark', data: { name: `utt-1${NUL}`, event: 'playout' } };
    expect(codec.parse(JSON.stringify(mark))).toEqual({ kind: 'mark', name: 'utt-1', status: 'played' });
    const playDone = codec.parse(
      JSON.stringify({ type: 'playDone', data: { id: `p${NUL}`, nested: { e: NUL } } }),
    );
    expect(playDone).toEqual({ kind: 'event', name: 'playDone', data: { id: 'p', nested: { e: '' } } });
  });

  it('no codec lets a NUL or lone surrogate out, whatever string fields hold', () => {
    const nasty = fc
      .array(fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.constantFrom(0, 0xd800, 0xdc00)), {
        maxLength: 40,
      })
      .map((codes) => String.fromCharCode(...codes));
    const makers: [() => { parse(raw: string): unknown }, string[], (s: string) => string[]][] = [
      [
        () => new NativeCodec(),
        [fixtureText('native', 'start.json')],
        (s) => [
          JSON.stringify({ t: 'stop', reason: s }),
          JSON.stringify({ t: 'mark', name: s }),
          JSON.stringify({ t: 'text', text: s }),
        ],
      ],
      [
        () => new TwilioCodec(),
        [],
        (s) => {
          const start = fixtureJson('twilio', 'start.json') as { start: Record<string, unknown> };
          return [
            JSON.stringify({ ...start, start: { ...start.start, customParameters: { [s]: s } } }),
            JSON.stringify({ event: 'mark', mark: { name: s } }),
            JSON.stringify({ event: 'connected', protocol: s, version: s }),
          ];
        },
      ],
      [
        () => new TelnyxCodec(),
        [],
        (s) => {
          const start = fixtureJson('telnyx', 'start.json') as { start: Record<string, unknown> };
          return [
            JSON.stringify({
              ...start,
              start: { ...start.start, to: s, tags: [s], custom_parameters: { [s]: s } },
            }),
            JSON.stringify({ event: 'error', payload: { code: s, title: s, detail: s } }),
            JSON.stringify({ event: 'mark', mark: { name: s } }),
          ];
        },
      ],
      [
        () => new JambonzCodec({ outSampleRate: 8000 }),
        [],
        (s) => [
          JSON.stringify({
            ...fixtureJson('jambonz', 'metadata.json'),
            [s]: s,
            from: s,
            customerData: { s },
          }),
          JSON.stringify({ type: 'mark', data: { name: s, event: 'cleared' } }),
          JSON.stringify({ type: 'playDone', data: { [s]: [s] } }),
        ],
      ],
    ];
    fc.assert(
      fc.property(nasty, (s) => {
        for (const [make, starts, messages] of makers) {
          for (const raw of messages(s)) {
            const codec = make();
            for (const m of starts) codec.parse(m);
            expectClean(codec.parse(raw));
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
