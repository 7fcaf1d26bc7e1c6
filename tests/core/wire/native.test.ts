import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NATIVE_MAX_TEXT, NativeCodec } from '../../../core/wire/index.ts';
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

const fixture = (name: string) => fixtureText('native', name);
const start = fixtureJson('native', 'start.json');
const audio = fixtureBytes('native', 'audio.bin');

function startedCodec(startMessage = fixture('start.json')): NativeCodec {
  const codec = new NativeCodec();
  codec.parse(startMessage);
  return codec;
}

runCodecContract('NativeCodec', {
  make: () => new NativeCodec(),
  protocol: 'native',
  startMessages: [fixture('start.json')],
  inboundFixtures: ['start', 'start-defaults', 'stop', 'dtmf', 'text', 'mark', 'clear'].map((n) =>
    fixture(`${n}.json`),
  ),
  binaryOut: true,
});

describe('NativeCodec', () => {
  describe('parse', () => {
    it('turns start into a start frame carrying the agent id', () => {
      expect(new NativeCodec().parse(fixture('start.json'))).toEqual({
        kind: 'start',
        callId: start.callId,
        encoding: 'pcm16',
        sampleRate: 16000,
        channels: 1,
        params: { agentId: start.agentId },
        call: {},
      });
    });

    it('defaults to pcm16 at 16000 Hz', () => {
      expect(new NativeCodec().parse(fixture('start-defaults.json'))).toMatchObject({
        kind: 'start',
        encoding: 'pcm16',
        sampleRate: 16000,
      });
    });

    it('accepts every allowed rate and encoding', () => {
      for (const sampleRate of [8000, 16000, 24000, 48000]) {
        for (const encoding of ['pcm16', 'mulaw'] as const) {
          const frame = new NativeCodec().parse(JSON.stringify({ ...start, sampleRate, encoding }));
          expect(frame).toMatchObject({ kind: 'start', sampleRate, encoding });
        }
      }
    });

    it('refuses a start with a bad field', () => {
      for (const bad of [
        { ...start, callId: undefined },
        { ...start, callId: '' },
        { ...start, callId: 'c'.repeat(129) },
        { ...start, callId: 'has "quotes"' },
        { ...start, callId: 42 },
        { ...start, agentId: undefined },
        { ...start, agentId: 'a b' },
        { ...start, sampleRate: 44100 },
        { ...start, sampleRate: '16000' },
        { ...start, encoding: 'alaw' },
        { ...start, encoding: 'opus' },
      ]) {
        const codec = new NativeCodec();
        expect(codec.parse(JSON.stringify(bad)), JSON.stringify(bad)).toBeNull();
        expect(codec.parse(audio)).toBeNull();
      }
      expect(new NativeCodec().parse(JSON.stringify({ ...start, callId: 'c'.repeat(128) }))).toMatchObject({
        kind: 'start',
      });
    });

    it('drops everything before start, audio included', () => {
      const codec = new NativeCodec();
      for (const name of ['stop.json', 'dtmf.json', 'text.json', 'mark.json', 'clear.json']) {
        expect(codec.parse(fixture(name)), name).toBeNull();
      }
      expect(codec.parse(audio)).toBeNull();
      expect(codec.parse(fixture('start.json'))).toMatchObject({ kind: 'start' });
    });

    it('drops a second start', () => {
      expect(startedCodec().parse(fixture('start-defaults.json'))).toBeNull();
    });

    it('turns binary frames into audio at the encoding and rate from start, without copying', () => {
      const frame = startedCodec().parse(audio);
      expect(frame).toEqual({ kind: 'audio_in', encoding: 'pcm16', sampleRate: 16000, data: audio });
      expect(frame?.kind === 'audio_in' && frame.data).toBe(audio);
    });

    it('wants whole pcm16 samples but takes any mu-law byte count', () => {
      expect(startedCodec().parse(new Uint8Array(641))).toBeNull();
      const mulaw = startedCodec(JSON.stringify({ ...start, encoding: 'mulaw', sampleRate: 8000 }));
      expect(mulaw.parse(new Uint8Array(161))).toMatchObject({
        kind: 'audio_in',
        encoding: 'mulaw',
        sampleRate: 8000,
      });
    });

    it('drops empty and oversized binary frames', () => {
      const codec = new NativeCodec({ maxAudioBytes: 640 });
      codec.parse(fixture('start.json'));
      expect(codec.parse(new Uint8Array(0))).toBeNull();
      expect(codec.parse(new Uint8Array(642))).toBeNull();
      expect(codec.parse(audio)).toMatchObject({ kind: 'audio_in' });
    });

    it('turns stop into an end frame with the reason', () => {
      expect(startedCodec().parse(fixture('stop.json'))).toEqual({ kind: 'end', reason: 'user_hangup' });
      expect(startedCodec().parse('{"t":"stop"}')).toEqual({ kind: 'end' });
      expect(startedCodec().parse('{"t":"stop","reason":7}')).toBeNull();
    });

    it('turns dtmf into a dtmf frame and refuses anything but one key', () => {
      const codec = startedCodec();
      expect(codec.parse(fixture('dtmf.json'))).toEqual({ kind: 'dtmf', digit: '*' });
      expect(codec.parse('{"t":"dtmf","digit":"D","durationMs":120}')).toEqual({
        kind: 'dtmf',
        digit: 'D',
        durationMs: 120,
      });
      for (const digit of ['E', '10', '', 'a', 5, null]) {
        expect(codec.parse(JSON.stringify({ t: 'dtmf', digit })), String(digit)).toBeNull();
      }
      expect(codec.parse('{"t":"dtmf","digit":"1","durationMs":-5}')).toBeNull();
    });

    it('turns text into a text frame within the length limit', () => {
      const codec = startedCodec();
      expect(codec.parse(fixture('text.json'))).toEqual({
        kind: 'text',
        text: fixtureJson('native', 'text.json').text,
      });
      expect(codec.parse(JSON.stringify({ t: 'text', text: 'x'.repeat(NATIVE_MAX_TEXT) }))).toMatchObject({
        kind: 'text',
      });
      expect(codec.parse(JSON.stringify({ t: 'text', text: 'x'.repeat(NATIVE_MAX_TEXT + 1) }))).toBeNull();
      expect(codec.parse('{"t":"text","text":""}')).toBeNull();
    });

    it('turns a client mark into a played mark and clear into a clear frame', () => {
      const codec = startedCodec();
      expect(codec.parse(fixture('mark.json'))).toEqual({ kind: 'mark', name: 'utt-1', status: 'played' });
      expect(codec.parse(fixture('clear.json'))).toEqual({ kind: 'clear' });
      expect(codec.parse(JSON.stringify({ t: 'mark', name: 'm'.repeat(129) }))).toBeNull();
    });

    it('ignores unknown extra fields but drops unknown message types', () => {
      const codec = startedCodec();
      expect(codec.parse('{"t":"clear","since":"v2"}')).toEqual({ kind: 'clear' });
      expect(codec.parse('{"t":"ping"}')).toBeNull();
      expect(codec.parse('{"type":"clear"}')).toBeNull();
    });
  });

  describe('serialize', () => {
    it('sends audio in the negotiated encoding and rate as the same binary bytes', () => {
      const out = startedCodec().serialize({
        kind: 'audio_out',
        encoding: 'pcm16',
        sampleRate: 16000,
        data: audio,
      });
      expect(out).toBe(audio);
    });

    it('refuses audio before start or in another encoding or rate', () => {
      const frame = { kind: 'audio_out', encoding: 'pcm16', sampleRate: 16000, data: audio } as const;
      expect(new NativeCodec().serialize(frame)).toBeNull();
      const codec = startedCodec();
      expect(codec.serialize({ ...frame, sampleRate: 24000 })).toBeNull();
      expect(codec.serialize({ ...frame, encoding: 'mulaw' })).toBeNull();
      expect(codec.serialize({ ...frame, data: new Uint8Array(3) })).toBeNull();
    });

    it('turns a mark frame into a mark message', () => {
      expectJson(
        startedCodec().serialize({ kind: 'mark', name: 'utt-1' }),
        fixtureJson('native', 'out-mark.json'),
      );
    });

    it('turns a clear frame into a clear message', () => {
      expectJson(startedCodec().serialize({ kind: 'clear' }), fixtureJson('native', 'out-clear.json'));
    });

    it('turns an end frame into stop, with the reason when there is one', () => {
      const codec = startedCodec();
      expectJson(
        codec.serialize({ kind: 'end', reason: 'agent_hangup' }),
        fixtureJson('native', 'out-stop.json'),
      );
      expectJson(codec.serialize({ kind: 'end' }), { t: 'stop' });
    });

    it('turns transcripts, agent text, events and errors into their messages', () => {
      const codec = startedCodec();
      expectJson(
        codec.serialize({ kind: 'transcript', text: 'move my appointment to friday', final: true }),
        fixtureJson('native', 'out-transcript.json'),
      );
      expectJson(
        codec.serialize({ kind: 'agent_text', text: 'Sure, Friday at 10 works.', final: false }),
        fixtureJson('native', 'out-agent-text.json'),
      );
      expectJson(
        codec.serialize({ kind: 'event', name: 'turn', data: { endpointingMs: 212, llmFirstTokenMs: 341 } }),
        fixtureJson('native', 'out-event.json'),
      );
      expectJson(codec.serialize({ kind: 'event', name: 'turn' }), { t: 'event', name: 'turn' });
      expectJson(
        codec.serialize({
          kind: 'error',
          code: 'agent_unavailable',
          message: 'The agent could not be loaded',
        }),
        fixtureJson('native', 'out-error.json'),
      );
    });

    it('sends errors and events before start, so a refused client learns why', () => {
      const out = new NativeCodec().serialize({ kind: 'error', code: 'bad_start', message: 'start first' });
      expectJson(out, { t: 'error', code: 'bad_start', message: 'start first' });
    });

    it('returns null for event data that is not JSON', () => {
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      expect(startedCodec().serialize({ kind: 'event', name: 'x', data: cyclic })).toBeNull();
      expect(startedCodec().serialize({ kind: 'event', name: 'x', data: { n: 1n } })).toBeNull();
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
          const out = codec.serialize({ kind: 'audio_out', encoding: 'pcm16', sampleRate: 16000, data });
          expect(codec.parse(asBytes(out))).toEqual({
            kind: 'audio_in',
            encoding: 'pcm16',
            sampleRate: 16000,
            data,
          });
        }),
      );
    });

    it('gets back the name of any mark the client reports played', () => {
      fc.assert(
        fc.property(markNames, (name) => {
          const codec = startedCodec();
          // The client echoes our mark message once its playout reaches it.
          const echo = codec.serialize({ kind: 'mark', name });
          expect(codec.parse(asText(echo))).toEqual({ kind: 'mark', name, status: 'played' });
        }),
      );
    });
  });
});
