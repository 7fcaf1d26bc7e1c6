import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TwilioCodec } from '../../../core/wire/index.ts';
import {
  asText,
  base64Bytes,
  expectJson,
  fixtureJson,
  fixtureText,
  markNames,
  runCodecContract,
} from './codec.contract.ts';

const fixture = (name: string) => fixtureText('twilio', name);
const start = fixtureJson('twilio', 'start.json') as { start: Record<string, unknown>; streamSid: string };
const media = fixtureJson('twilio', 'media.json') as { media: { payload: string; timestamp: string } };

function startedCodec(): TwilioCodec {
  const codec = new TwilioCodec();
  codec.parse(fixture('connected.json'));
  codec.parse(fixture('start.json'));
  return codec;
}

runCodecContract('TwilioCodec', {
  make: () => new TwilioCodec(),
  protocol: 'twilio',
  startMessages: [fixture('connected.json'), fixture('start.json')],
  inboundFixtures: ['connected', 'start', 'media', 'dtmf', 'mark', 'stop'].map((n) => fixture(`${n}.json`)),
  binaryOut: false,
});

describe('TwilioCodec', () => {
  describe('parse', () => {
    it('turns the connected message into a connected event', () => {
      expect(new TwilioCodec().parse(fixture('connected.json'))).toEqual({
        kind: 'event',
        name: 'connected',
        data: { protocol: 'Call', version: '1.0.0' },
      });
    });

    it('turns start into a mu-law 8000 mono start frame with the custom parameters', () => {
      const codec = new TwilioCodec();
      expect(codec.parse(fixture('start.json'))).toEqual({
        kind: 'start',
        callId: start.start.callSid,
        streamId: start.streamSid,
        encoding: 'mulaw',
        sampleRate: 8000,
        channels: 1,
        params: start.start.customParameters,
        call: { accountSid: start.start.accountSid, tracks: 'inbound' },
      });
      expect(codec.streamId).toBe(start.streamSid);
    });

    it('decodes inbound media into the raw mu-law bytes with the timestamp as a number', () => {
      const frame = startedCodec().parse(fixture('media.json'));
      const expected = base64Bytes(media.media.payload);
      expect(expected.byteLength).toBe(160);
      expect(frame).toMatchObject({ kind: 'audio_in', encoding: 'mulaw', sampleRate: 8000, timestampMs: 40 });
      expect(frame?.kind === 'audio_in' && new Uint8Array(frame.data)).toEqual(expected);
    });

    it('still decodes media that arrives before start, as mu-law 8000', () => {
      // Twilio audio has one format, so no state is needed; the session decides what to do.
      const frame = new TwilioCodec().parse(fixture('media.json'));
      expect(frame).toMatchObject({ kind: 'audio_in', encoding: 'mulaw', sampleRate: 8000 });
    });

    it('drops media from the outbound track', () => {
      expect(startedCodec().parse(fixture('media-outbound-track.json'))).toBeNull();
    });

    it('leaves out a timestamp that is not a number', () => {
      const odd = JSON.stringify({
        event: 'media',
        media: { payload: media.media.payload, timestamp: 'soon' },
      });
      const frame = startedCodec().parse(odd);
      expect(frame?.kind).toBe('audio_in');
      expect(frame).not.toHaveProperty('timestampMs');
    });

    it('turns dtmf into a dtmf frame', () => {
      expect(startedCodec().parse(fixture('dtmf.json'))).toEqual({ kind: 'dtmf', digit: '1' });
    });

    it('turns a mark echo into a played mark', () => {
      expect(startedCodec().parse(fixture('mark.json'))).toEqual({
        kind: 'mark',
        name: 'utt-1',
        status: 'played',
      });
    });

    it('turns stop into an end frame', () => {
      expect(startedCodec().parse(fixture('stop.json'))).toEqual({ kind: 'end', reason: 'stop' });
    });

    it('returns null for binary frames, which Twilio never sends', () => {
      expect(startedCodec().parse(new Uint8Array(base64Bytes(media.media.payload)))).toBeNull();
    });

    it('returns null for malformed and unknown messages', () => {
      const codec = startedCodec();
      for (const raw of [
        '',
        'not json',
        '[1,2]',
        '{"event":"media"}',
        '{"event":"media","media":{"payload":""}}',
        '{"event":"media","media":{"payload":42}}',
        '{"event":"dtmf","dtmf":{"digit":"12"}}',
        '{"event":"dtmf","dtmf":{"digit":"x"}}',
        '{"event":"mark","mark":{"name":""}}',
        '{"event":"start","start":{"callSid":"CA1"}}',
        '{"event":"surprise"}',
      ]) {
        expect(codec.parse(raw), raw).toBeNull();
      }
    });

    it('refuses a start whose ids would need escaping in outbound JSON', () => {
      const codec = new TwilioCodec();
      const evil = structuredClone(start);
      evil.start.streamSid = 'MZ"},{"event":"clear';
      evil.streamSid = evil.start.streamSid as string;
      expect(codec.parse(JSON.stringify(evil))).toBeNull();
      expect(codec.serialize({ kind: 'clear' })).toBeNull();
    });

    it('drops media payloads larger than maxAudioBytes', () => {
      const codec = new TwilioCodec({ maxAudioBytes: 100 });
      expect(codec.parse(fixture('media.json'))).toBeNull();
      const small = JSON.stringify({ event: 'media', media: { payload: btoa('\xff'.repeat(99)) } });
      expect(codec.parse(small)).toMatchObject({ kind: 'audio_in' });
    });
  });

  describe('serialize', () => {
    it('sends nothing before start, since every message needs the streamSid', () => {
      const codec = new TwilioCodec();
      const data = base64Bytes(media.media.payload);
      expect(codec.serialize({ kind: 'audio_out', encoding: 'mulaw', sampleRate: 8000, data })).toBeNull();
      expect(codec.serialize({ kind: 'mark', name: 'utt-1' })).toBeNull();
      expect(codec.serialize({ kind: 'clear' })).toBeNull();
    });

    it('turns mu-law 8000 audio into a Twilio media message', () => {
      const data = base64Bytes(media.media.payload);
      const out = startedCodec().serialize({ kind: 'audio_out', encoding: 'mulaw', sampleRate: 8000, data });
      expectJson(out, fixtureJson('twilio', 'out-media.json'));
    });

    it('encodes a subarray view without the bytes around it', () => {
      const whole = new Uint8Array([1, 2, 3, 4, 5, 6]);
      const out = startedCodec().serialize({
        kind: 'audio_out',
        encoding: 'mulaw',
        sampleRate: 8000,
        data: whole.subarray(2, 5),
      });
      expect(base64Bytes(JSON.parse(out as string).media.payload)).toEqual(new Uint8Array([3, 4, 5]));
    });

    it('refuses audio that is not mu-law 8000, or empty', () => {
      const codec = startedCodec();
      const data = new Uint8Array(320);
      expect(codec.serialize({ kind: 'audio_out', encoding: 'pcm16', sampleRate: 8000, data })).toBeNull();
      expect(codec.serialize({ kind: 'audio_out', encoding: 'mulaw', sampleRate: 16000, data })).toBeNull();
      expect(codec.serialize({ kind: 'audio_out', encoding: 'alaw', sampleRate: 8000, data })).toBeNull();
      const empty = new Uint8Array(0);
      expect(
        codec.serialize({ kind: 'audio_out', encoding: 'mulaw', sampleRate: 8000, data: empty }),
      ).toBeNull();
    });

    it('turns a mark frame into a Twilio mark event', () => {
      expectJson(
        startedCodec().serialize({ kind: 'mark', name: 'utt-1' }),
        fixtureJson('twilio', 'out-mark.json'),
      );
    });

    it('turns a clear frame into a Twilio clear event', () => {
      expectJson(startedCodec().serialize({ kind: 'clear' }), fixtureJson('twilio', 'out-clear.json'));
    });

    it('returns null for frames Twilio streams cannot carry', () => {
      const codec = startedCodec();
      expect(codec.serialize({ kind: 'end', reason: 'done' })).toBeNull();
      expect(codec.serialize({ kind: 'transcript', text: 'hi', final: true })).toBeNull();
      expect(codec.serialize({ kind: 'agent_text', text: 'hi', final: true })).toBeNull();
      expect(codec.serialize({ kind: 'event', name: 'turn' })).toBeNull();
      expect(codec.serialize({ kind: 'error', code: 'x', message: 'y' })).toBeNull();
      expect(codec.serialize({ kind: 'mark', name: '' })).toBeNull();
    });
  });

  describe('round trips', () => {
    it('keeps audio bytes through serialize and parse', () => {
      fc.assert(
        fc.property(fc.uint8Array({ minLength: 1, maxLength: 1600 }), (data) => {
          const codec = startedCodec();
          const out = codec.serialize({ kind: 'audio_out', encoding: 'mulaw', sampleRate: 8000, data });
          const frame = codec.parse(asText(out));
          expect(frame?.kind === 'audio_in' && new Uint8Array(frame.data)).toEqual(data);
        }),
      );
    });

    it('gets back the name of any mark Twilio echoes', () => {
      fc.assert(
        fc.property(markNames, (name) => {
          const codec = startedCodec();
          // Twilio echoes the mark message we sent, with the same streamSid and name.
          const echo = codec.serialize({ kind: 'mark', name });
          expect(codec.parse(asText(echo))).toEqual({ kind: 'mark', name, status: 'played' });
        }),
      );
    });
  });
});

describe('TwilioCodec media fast path', () => {
  /** The same message parsed twice: once as Twilio sends it (fast path), once re-spaced (full parser). */
  function both(message: Record<string, unknown>) {
    const compact = JSON.stringify(message);
    const spaced = `{ ${compact.slice(1)}`; // a space after the brace: the fast path does not apply
    return { fast: new TwilioCodec().parse(compact), full: new TwilioCodec().parse(spaced) };
  }

  it('gives the same frames as the full parser for the shapes Twilio sends', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 400 }),
        fc.option(fc.constantFrom('inbound', 'outbound'), { nil: undefined }),
        fc.option(fc.nat({ max: 10_000_000 }), { nil: undefined }),
        (bytes, track, timestamp) => {
          const media: Record<string, string> = { payload: Buffer.from(bytes).toString('base64') };
          if (track !== undefined) media.track = track;
          if (timestamp !== undefined) media.timestamp = String(timestamp);
          const { fast, full } = both({ event: 'media', sequenceNumber: '3', media, streamSid: 'MZ1' });
          expect(fast).toEqual(full);
        },
      ),
    );
  });

  it('falls back to the full parser, or drops, for anything unusual', () => {
    const codec = new TwilioCodec();
    // Escaped quote inside the payload string: not the plain shape, the full parser decides.
    expect(codec.parse('{"event":"media","media":{"payload":"AAAA\\"x"}}')).toEqual(
      codec.parse('{ "event":"media","media":{"payload":"AAAA\\"x"}}'),
    );
    expect(codec.parse('{"event":"media","media":{"payload":"')).toBeNull();
    expect(codec.parse('{"event":"media","media":{"track":"outbound","payload":"AAAA"}}')).toBeNull();
    // A timestamp that is not digits: the full parser keeps the audio and drops the timestamp.
    expect(codec.parse('{"event":"media","media":{"payload":"AAAA","timestamp":"12x"}}')).toEqual({
      kind: 'audio_in',
      encoding: 'mulaw',
      sampleRate: 8000,
      data: Buffer.from([0, 0, 0]),
    });
  });
});
