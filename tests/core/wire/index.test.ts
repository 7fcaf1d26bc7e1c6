import { describe, expect, it } from 'vitest';
import {
  createCodec,
  JambonzCodec,
  NativeCodec,
  TelnyxCodec,
  TwilioCodec,
  type WireProtocol,
} from '../../../core/wire/index.ts';
import { fixtureText } from './codec.contract.ts';

describe('createCodec', () => {
  it('picks the codec class for each protocol', () => {
    const classes = { twilio: TwilioCodec, jambonz: JambonzCodec, telnyx: TelnyxCodec, native: NativeCodec };
    for (const protocol of Object.keys(classes) as WireProtocol[]) {
      const codec = createCodec(protocol);
      expect(codec).toBeInstanceOf(classes[protocol]);
      expect(codec.protocol).toBe(protocol);
    }
  });

  it('creates a fresh codec per socket, so one call never sees another call’s stream id', () => {
    const first = createCodec('twilio');
    first.parse(fixtureText('twilio', 'start.json'));
    expect(first.serialize({ kind: 'clear' })).not.toBeNull();
    expect(createCodec('twilio').serialize({ kind: 'clear' })).toBeNull();
  });

  it('passes the bidirectional rate to the Jambonz codec, 8000 by default', () => {
    const data = new Uint8Array(640);
    const audio = (sampleRate: number) =>
      ({ kind: 'audio_out', encoding: 'pcm16', sampleRate, data }) as const;
    expect(createCodec('jambonz').serialize(audio(8000))).toBe(data);
    expect(createCodec('jambonz').serialize(audio(16000))).toBeNull();
    expect(createCodec('jambonz', { outSampleRate: 16000 }).serialize(audio(16000))).toBe(data);
  });

  it('passes maxAudioBytes to every codec', () => {
    const native = createCodec('native', { maxAudioBytes: 4 });
    native.parse(fixtureText('native', 'start.json'));
    expect(native.parse(new Uint8Array(6))).toBeNull();
    expect(native.parse(new Uint8Array(4))).toMatchObject({ kind: 'audio_in' });
    const twilio = createCodec('twilio', { maxAudioBytes: 100 });
    expect(twilio.parse(fixtureText('twilio', 'media.json'))).toBeNull();
  });
});
