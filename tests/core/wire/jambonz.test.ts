import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JAMBONZ_SUBPROTOCOL, JambonzCodec } from '../../../core/wire/index.ts';
import {
  asBytes,
  asText,
  expectJson,
  fixtureBytes,
  fixtureJson,
  fixtureText,
  markNames,
  runCodecContract,
} from './codec.contract.ts';

const fixture = (name: string) => fixtureText('jambonz', name);
const metadata = fixtureJson('jambonz', 'metadata.json');
const audio = fixtureBytes('jambonz', 'audio.bin');

function startedCodec(outSampleRate = 8000): JambonzCodec {
  const codec = new JambonzCodec({ outSampleRate });
  codec.parse(fixture('metadata.json'));
  return codec;
}

runCodecContract('JambonzCodec', {
  make: () => new JambonzCodec({ outSampleRate: 8000 }),
  protocol: 'jambonz',
  startMessages: [fixture('metadata.json')],
  inboundFixtures: ['metadata', 'dtmf', 'mark-playout', 'mark-cleared', 'play-done'].map((n) =>
    fixture(`${n}.json`),
  ),
  binaryOut: true,
});

describe('JambonzCodec', () => {
  it('names the listen subprotocol', () => {
    expect(JAMBONZ_SUBPROTOCOL).toBe('audio.jambonz.org');
  });

  describe('parse', () => {
    it('turns the metadata frame into a pcm16 start frame, call info apart from our metadata', () => {
      const frame = new JambonzCodec({ outSampleRate: 8000 }).parse(fixture('metadata.json'));
      expect(frame).toEqual({
        kind: 'start',
        callId: metadata.callSid,
        encoding: 'pcm16',
        sampleRate: 8000,
        channels: 1,
        params: { agentId: metadata.agentId, token: metadata.token },
        call: {
          callSid: metadata.callSid,
          direction: 'inbound',
          from: metadata.from,
          to: metadata.to,
          callId: metadata.callId,
          sbcCallid: metadata.sbcCallid,
          sipStatus: '200',
          sipReason: 'OK',
          callStatus: 'in-progress',
          callerId: metadata.callerId,
          accountSid: metadata.accountSid,
          traceId: metadata.traceId,
          applicationSid: metadata.applicationSid,
          fsSipAddress: metadata.fsSipAddress,
          originatingSipIp: metadata.originatingSipIp,
          originatingSipTrunkName: metadata.originatingSipTrunkName,
          customerData: JSON.stringify(metadata.customerData),
        },
      });
    });

    it('reports two channels when mixType is stereo, and wants whole stereo sample frames', () => {
      const codec = new JambonzCodec({ outSampleRate: 16000 });
      const frame = codec.parse(JSON.stringify({ ...metadata, mixType: 'stereo', sampleRate: 16000 }));
      expect(frame).toMatchObject({ kind: 'start', channels: 2, sampleRate: 16000 });
      expect(codec.parse(new Uint8Array(6))).toBeNull();
      expect(codec.parse(new Uint8Array(8))).toMatchObject({ kind: 'audio_in', sampleRate: 16000 });
    });

    it('refuses metadata without a usable callSid or sampleRate', () => {
      for (const bad of [
        { ...metadata, callSid: undefined },
        { ...metadata, callSid: 'has space' },
        { ...metadata, sampleRate: 'fast' },
        { ...metadata, sampleRate: 12.5 },
        { ...metadata, sampleRate: 0 },
      ]) {
        const codec = new JambonzCodec({ outSampleRate: 8000 });
        expect(codec.parse(JSON.stringify(bad))).toBeNull();
        expect(codec.parse(audio)).toBeNull();
      }
    });

    it('returns null for binary audio before the metadata frame', () => {
      expect(new JambonzCodec({ outSampleRate: 8000 }).parse(audio)).toBeNull();
    });

    it('passes binary L16 through as pcm16 at the negotiated rate, without copying', () => {
      const frame = startedCodec().parse(audio);
      expect(frame).toEqual({ kind: 'audio_in', encoding: 'pcm16', sampleRate: 8000, data: audio });
      expect(frame?.kind === 'audio_in' && frame.data).toBe(audio);
    });

    it('returns null for empty, odd-sized or oversized binary frames', () => {
      const codec = new JambonzCodec({ outSampleRate: 8000, maxAudioBytes: 320 });
      codec.parse(fixture('metadata.json'));
      expect(codec.parse(new Uint8Array(0))).toBeNull();
      expect(codec.parse(new Uint8Array(319))).toBeNull();
      expect(codec.parse(new Uint8Array(322))).toBeNull();
      expect(codec.parse(audio)).toMatchObject({ kind: 'audio_in' });
    });

    it('turns dtmf into a dtmf frame with the duration converted from 8 kHz ticks to ms', () => {
      expect(startedCodec().parse(fixture('dtmf.json'))).toEqual({
        kind: 'dtmf',
        digit: '5',
        durationMs: 200,
      });
      expect(startedCodec().parse('{"event":"dtmf","dtmf":"#"}')).toEqual({ kind: 'dtmf', digit: '#' });
    });

    it('turns mark playout into a played mark and mark cleared into a cleared mark', () => {
      const codec = startedCodec();
      expect(codec.parse(fixture('mark-playout.json'))).toEqual({
        kind: 'mark',
        name: 'utt-1',
        status: 'played',
      });
      expect(codec.parse(fixture('mark-cleared.json'))).toEqual({
        kind: 'mark',
        name: 'utt-2',
        status: 'cleared',
      });
      expect(codec.parse('{"type":"mark","data":{"name":"utt-3","event":"queued"}}')).toBeNull();
    });

    it('turns playDone into an event carrying its data', () => {
      expect(startedCodec().parse(fixture('play-done.json'))).toEqual({
        kind: 'event',
        name: 'playDone',
        data: fixtureJson('jambonz', 'play-done.json').data,
      });
    });

    it('returns null for a second metadata frame and unknown messages', () => {
      const codec = startedCodec();
      expect(codec.parse(fixture('metadata.json'))).toBeNull();
      expect(codec.parse('{"type":"transcription"}')).toBeNull();
      expect(codec.parse('{"event":"dtmf","dtmf":"55"}')).toBeNull();
    });
  });

  describe('serialize', () => {
    it('sends pcm16 at the bidirectional rate as the same binary bytes', () => {
      const out = startedCodec().serialize({
        kind: 'audio_out',
        encoding: 'pcm16',
        sampleRate: 8000,
        data: audio,
      });
      expect(out).toBe(audio);
    });

    it('refuses audio at another rate or encoding, or with half a sample', () => {
      const codec = startedCodec(16000);
      expect(
        codec.serialize({ kind: 'audio_out', encoding: 'pcm16', sampleRate: 8000, data: audio }),
      ).toBeNull();
      expect(
        codec.serialize({ kind: 'audio_out', encoding: 'mulaw', sampleRate: 16000, data: audio }),
      ).toBeNull();
      const odd = new Uint8Array(321);
      expect(
        codec.serialize({ kind: 'audio_out', encoding: 'pcm16', sampleRate: 16000, data: odd }),
      ).toBeNull();
    });

    it('turns a clear frame into killAudio', () => {
      expectJson(startedCodec().serialize({ kind: 'clear' }), fixtureJson('jambonz', 'out-kill-audio.json'));
    });

    it('turns a mark frame into a Jambonz mark command', () => {
      expectJson(
        startedCodec().serialize({ kind: 'mark', name: 'utt-1' }),
        fixtureJson('jambonz', 'out-mark.json'),
      );
    });

    it('turns an end frame into disconnect', () => {
      expectJson(
        startedCodec().serialize({ kind: 'end', reason: 'done' }),
        fixtureJson('jambonz', 'out-disconnect.json'),
      );
    });

    it('returns null for frames the listen socket cannot carry', () => {
      const codec = startedCodec();
      expect(codec.serialize({ kind: 'transcript', text: 'hi', final: true })).toBeNull();
      expect(codec.serialize({ kind: 'agent_text', text: 'hi', final: true })).toBeNull();
      expect(codec.serialize({ kind: 'event', name: 'turn' })).toBeNull();
      expect(codec.serialize({ kind: 'error', code: 'x', message: 'y' })).toBeNull();
    });
  });

  describe('round trips', () => {
    it('keeps audio bytes through serialize and parse', () => {
      const evenBytes = fc
        .uint8Array({ minLength: 2, maxLength: 3200 })
        .filter((d) => d.byteLength % 2 === 0);
      fc.assert(
        fc.property(evenBytes, (data) => {
          const codec = startedCodec();
          const out = codec.serialize({ kind: 'audio_out', encoding: 'pcm16', sampleRate: 8000, data });
          expect(codec.parse(asBytes(out))).toEqual({
            kind: 'audio_in',
            encoding: 'pcm16',
            sampleRate: 8000,
            data,
          });
        }),
      );
    });

    it('gets back the name of any mark Jambonz reports played or cleared', () => {
      fc.assert(
        fc.property(markNames, fc.constantFrom('playout', 'cleared'), (name, event) => {
          const codec = startedCodec();
          const sent = JSON.parse(asText(codec.serialize({ kind: 'mark', name })));
          // Jambonz answers with the same message plus data.event.
          const answer = JSON.stringify({ ...sent, data: { ...sent.data, event } });
          const status = event === 'playout' ? 'played' : 'cleared';
          expect(codec.parse(answer)).toEqual({ kind: 'mark', name, status });
        }),
      );
    });
  });
});
