/**
 * Wire codecs: one per WebSocket protocol, picked once at the edge (`createCodec`). They
 * translate provider messages to frames and back, and hold no socket and no call logic.
 */
import type { WireCodec, WireProtocol } from './frames.ts';
import { JambonzCodec } from './jambonz.ts';
import { NativeCodec } from './native.ts';
import { TelnyxCodec } from './telnyx.ts';
import { TwilioCodec } from './twilio.ts';

export type * from './frames.ts';
export { JAMBONZ_SUBPROTOCOL, JambonzCodec, type JambonzCodecOptions } from './jambonz.ts';
export {
  NATIVE_DEFAULT_ENCODING,
  NATIVE_DEFAULT_SAMPLE_RATE,
  NATIVE_ENCODINGS,
  NATIVE_MAX_TEXT,
  NATIVE_SAMPLE_RATES,
  NativeCodec,
  type NativeCodecOptions,
} from './native.ts';
export { TelnyxCodec, type TelnyxCodecOptions } from './telnyx.ts';
export { TwilioCodec, type TwilioCodecOptions } from './twilio.ts';
export { MAX_AUDIO_BYTES, MAX_MARK_NAME } from './wire-helpers.ts';

/** Options for `createCodec`; each codec reads the ones that concern it. */
export interface CodecOptions {
  /**
   * Jambonz only: `bidirectionalAudio.sampleRate` of the listen verb we answered with, i.e.
   * the rate outbound L16 must have. Default 8000 (the rate our listen verb asks for).
   */
  outSampleRate?: number;
  /** Inbound audio frames decoding to more than this many bytes are dropped (null). */
  maxAudioBytes?: number;
}

/** A fresh codec for one socket speaking `protocol` (codecs keep per-connection state). */
export function createCodec(protocol: WireProtocol, opts: CodecOptions = {}): WireCodec {
  const { maxAudioBytes } = opts;
  switch (protocol) {
    case 'twilio':
      return new TwilioCodec({ maxAudioBytes });
    case 'telnyx':
      return new TelnyxCodec({ maxAudioBytes });
    case 'jambonz':
      return new JambonzCodec({ outSampleRate: opts.outSampleRate ?? 8000, maxAudioBytes });
    case 'native':
      return new NativeCodec({ maxAudioBytes });
  }
}
