import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TelnyxCodec } from '../../../core/wire/index.ts';
import {
  asText,
  base64Bytes,
  expectJson,
  fixtureJson,
  fixtureText,
  markNames,
  runCodecContract,
} from './codec.contract.ts';

const fixture = (name: string) => fixtureText('telnyx', name);
const start = fixtureJson('telnyx', 'start.json') as { stream_id: string; start: Record<string, unknown> };
const media = fixtureJson('telnyx', 'media.json') as { media: { payload: string } };

function startedCodec(): TelnyxCodec {
  const codec = new TelnyxCodec();
  codec.parse(fixture('connected.json'));
  codec.parse(fixture('start.json'));
  return codec;
}

/** The recorded start with another media_format. */
function startWith(mediaFormat: Record<string, unknown>): string {
  const doc = structuredClone(start);
  doc.start.media_format = mediaFormat;
  return JSON.stringify(doc);
}

runCodecContract('TelnyxCodec', {
  make: () => new TelnyxCodec(),
  protocol: 'telnyx',
  startMessages: [fixture('connected.json'), fixture('start.json')],
  inboundFixtures: ['connected', 'start', 'start-g722', 'media', 'dtmf', 'mark', 'stop', 'error'].map((n) =>
    fixture(`${n}.json`),
  ),
  binaryOut: false,
});

describe('TelnyxCodec', () => {
  describe('parse', () => {
    it('turns the connected message into a connected event', () => {
      expect(new TelnyxCodec().parse(fixture('connected.json'))).toEqual({
        kind: 'event',
        name: 'connected',
        data: { version: '1.0.0' },
      });
    });

    it('never passes the streaming auth token from connected on', () => {
      const raw = JSON.stringify({
        event: 'connected',
        version: '1.0.0',
        connected: { 'x-telnyx-streaming-auth-token': 'secret-token' },
      });
      expect(JSON.stringify(new TelnyxCodec().parse(raw))).not.toContain('secret-token');
    });

    it('turns a PCMU start into a mu-law 8000 start frame with the call fields in camelCase', () => {
      const codec = new TelnyxCodec();
      expect(codec.parse(fixture('start.json'))).toEqual({
        kind: 'start',
        callId: start.start.call_control_id,
        streamId: start.stream_id,
        encoding: 'mulaw',
        sampleRate: 8000,
        channels: 1,
        params: start.start.custom_parameters,
        call: {
          from: start.start.from,
          to: start.start.to,
          callSessionId: start.start.call_session_id,
          userId: start.start.user_id,
          clientState: start.start.client_state,
          tags: 'campaign-42',
        },
      });
      expect(codec.streamId).toBe(start.stream_id);
    });

    it('turns a PCMA start into an a-law stream', () => {
      const codec = new TelnyxCodec();
      expect(codec.parse(startWith({ encoding: 'PCMA', sample_rate: 8000, channels: 1 }))).toMatchObject({
        kind: 'start',
        encoding: 'alaw',
      });
      expect(codec.parse(fixture('media.json'))).toMatchObject({ kind: 'audio_in', encoding: 'alaw' });
    });

    it('answers a G722 start with an unsupported_encoding error and then drops its media', () => {
      const codec = new TelnyxCodec();
      const frame = codec.parse(fixture('start-g722.json'));
      expect(frame).toMatchObject({ kind: 'error', code: 'unsupported_encoding' });
      expect(frame?.kind === 'error' && frame.message).toContain('G722');
      expect(codec.parse(fixture('media.json'))).toBeNull();
    });

    it('answers other codecs Telnyx offers (OPUS, AMR-WB, L16) with unsupported_encoding', () => {
      for (const encoding of ['OPUS', 'AMR-WB', 'L16', 'pcmu', 42]) {
        const frame = new TelnyxCodec().parse(startWith({ encoding, sample_rate: 16000, channels: 1 }));
        expect(frame, String(encoding)).toMatchObject({ kind: 'error', code: 'unsupported_encoding' });
      }
      const wide = new TelnyxCodec().parse(startWith({ encoding: 'PCMU', sample_rate: 16000, channels: 1 }));
      expect(wide).toMatchObject({ kind: 'error', code: 'unsupported_encoding' });
    });

    it('decodes inbound media into the raw bytes at the negotiated encoding', () => {
      const frame = startedCodec().parse(fixture('media.json'));
      expect(frame).toMatchObject({ kind: 'audio_in', encoding: 'mulaw', sampleRate: 8000, timestampMs: 40 });
      expect(frame?.kind === 'audio_in' && new Uint8Array(frame.data)).toEqual(
        base64Bytes(media.media.payload),
      );
    });

    it('drops media before start, since the encoding is not known yet', () => {
      expect(new TelnyxCodec().parse(fixture('media.json'))).toBeNull();
    });

    it('drops media from the outbound track', () => {
      const doc = fixtureJson('telnyx', 'media.json') as { media: Record<string, unknown> };
      doc.media.track = 'outbound';
      expect(startedCodec().parse(JSON.stringify(doc))).toBeNull();
    });

    it('turns dtmf into a dtmf frame', () => {
      expect(startedCodec().parse(fixture('dtmf.json'))).toEqual({ kind: 'dtmf', digit: '#' });
    });

    it('turns a mark callback into a played mark', () => {
      expect(startedCodec().parse(fixture('mark.json'))).toEqual({
        kind: 'mark',
        name: 'utt-1',
        status: 'played',
      });
    });

    it('turns stop into an end frame', () => {
      expect(startedCodec().parse(fixture('stop.json'))).toEqual({ kind: 'end', reason: 'stop' });
    });

    it('turns a Telnyx error frame into an error frame', () => {
      expect(startedCodec().parse(fixture('error.json'))).toEqual({
        kind: 'error',
        code: 'telnyx_100003',
        message: 'The received frame is not valid JSON',
      });
      expect(startedCodec().parse('{"event":"error"}')).toEqual({
        kind: 'error',
        code: 'telnyx_error',
        message: 'Telnyx stream error',
      });
    });

    it('returns null for binary frames and malformed messages', () => {
      const codec = startedCodec();
      expect(codec.parse(base64Bytes(media.media.payload))).toBeNull();
      for (const raw of [
        '{"event":"media","media":{}}',
        '{"event":"dtmf","dtmf":{"digit":"E"}}',
        '{"event":"start","stream_id":"s1","start":{}}',
        '{"event":"start","stream_id":"bad id","start":{"call_control_id":"v3:x"}}',
        '{"event":"nope"}',
      ]) {
        expect(codec.parse(raw), raw).toBeNull();
      }
    });
  });

  describe('serialize', () => {
    it('turns mu-law audio into a Telnyx media message', () => {
      const data = base64Bytes(media.media.payload);
      const out = startedCodec().serialize({ kind: 'audio_out', encoding: 'mulaw', sampleRate: 8000, data });
      expectJson(out, fixtureJson('telnyx', 'out-media.json'));
    });

    it('refuses audio in another encoding or rate than the stream, or before start', () => {
      const data = new Uint8Array(160);
      const codec = startedCodec();
      expect(codec.serialize({ kind: 'audio_out', encoding: 'alaw', sampleRate: 8000, data })).toBeNull();
      expect(codec.serialize({ kind: 'audio_out', encoding: 'mulaw', sampleRate: 16000, data })).toBeNull();
      expect(codec.serialize({ kind: 'audio_out', encoding: 'pcm16', sampleRate: 8000, data })).toBeNull();
      expect(
        new TelnyxCodec().serialize({ kind: 'audio_out', encoding: 'mulaw', sampleRate: 8000, data }),
      ).toBeNull();
    });

    it('turns a mark frame into a Telnyx mark event', () => {
      expectJson(
        startedCodec().serialize({ kind: 'mark', name: 'utt-1' }),
        fixtureJson('telnyx', 'out-mark.json'),
      );
    });

    it('turns a clear frame into a Telnyx clear event', () => {
      expectJson(startedCodec().serialize({ kind: 'clear' }), fixtureJson('telnyx', 'out-clear.json'));
    });

    it('returns null for frames Telnyx streams cannot carry', () => {
      const codec = startedCodec();
      expect(codec.serialize({ kind: 'end' })).toBeNull();
      expect(codec.serialize({ kind: 'transcript', text: 'hi', final: false })).toBeNull();
      expect(codec.serialize({ kind: 'event', name: 'turn' })).toBeNull();
      expect(codec.serialize({ kind: 'error', code: 'x', message: 'y' })).toBeNull();
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

    it('gets back the name of any mark Telnyx returns', () => {
      fc.assert(
        fc.property(markNames, (name) => {
          const codec = startedCodec();
          const sent = JSON.parse(asText(codec.serialize({ kind: 'mark', name })));
          // Telnyx sends the same mark back with the stream id and a sequence number added.
          const callback = JSON.stringify({ ...sent, stream_id: start.stream_id, sequence_number: '9' });
          expect(codec.parse(callback)).toEqual({ kind: 'mark', name, status: 'played' });
        }),
      );
    });
  });
});
