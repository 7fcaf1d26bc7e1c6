/**
 * Our own `/realtime/voice` protocol for browsers and SDKs, specified in
 * docs/realtime-protocol.md (the source for every rule below).
 *
 * Text frames are JSON objects with a `t` field; binary frames are audio in the encoding and
 * rate the client chose in `start`. Clients are untrusted, so every field is checked for type
 * and length and anything off is dropped (null) rather than half-understood. Unknown extra
 * fields are ignored so clients may send newer fields to older servers.
 */
import type {
  AudioEncoding,
  InboundFrame,
  OutboundFrame,
  StartFrame,
  WireCodec,
  WireMessage,
} from './frames.ts';
import { cleanString } from './sanitize.ts';
import {
  isDtmfDigit,
  isSafeId,
  type JsonObject,
  MAX_AUDIO_BYTES,
  markName,
  parseObject,
} from './wire-helpers.ts';

/** Rates a client may choose in `start`. */
export const NATIVE_SAMPLE_RATES: readonly number[] = [8000, 16000, 24000, 48000];
/** Encodings a client may choose in `start`. */
export const NATIVE_ENCODINGS: readonly AudioEncoding[] = ['pcm16', 'mulaw'];
/** Defaults when `start` leaves them out. */
export const NATIVE_DEFAULT_SAMPLE_RATE = 16000;
export const NATIVE_DEFAULT_ENCODING: AudioEncoding = 'pcm16';

/** Longest typed message (`{"t":"text"}`) we accept; longer ones are refused. */
export const NATIVE_MAX_TEXT = 4096;
/** Stop reasons are cut to this length (the stop itself is always honoured). */
const MAX_REASON = 256;
/** Longest text frame we look at at all: bounds JSON.parse work on hostile input. */
const MAX_MESSAGE_CHARS = 16 * 1024;
/** Longest key press we believe, in ms. */
const MAX_DTMF_MS = 60_000;

const CLEAR_MESSAGE = '{"t":"clear"}';
const STOP_MESSAGE = '{"t":"stop"}';

export interface NativeCodecOptions {
  /** Inbound binary frames larger than this many bytes are dropped. */
  maxAudioBytes?: number;
}

/**
 * One per `/realtime/voice` WebSocket. State: the encoding and rate from `start`; until it
 * arrives every other message is dropped.
 */
export class NativeCodec implements WireCodec {
  readonly protocol = 'native' as const;
  private readonly maxAudioBytes: number;
  private encoding: AudioEncoding | null = null;
  private sampleRate = 0;

  constructor(options: NativeCodecOptions = {}) {
    this.maxAudioBytes = options.maxAudioBytes ?? MAX_AUDIO_BYTES;
  }

  parse(raw: WireMessage): InboundFrame | null {
    if (typeof raw !== 'string') {
      const size = raw.byteLength;
      if (this.encoding === null || size === 0 || size > this.maxAudioBytes) return null;
      if (this.encoding === 'pcm16' && size % 2 !== 0) return null;
      return { kind: 'audio_in', encoding: this.encoding, sampleRate: this.sampleRate, data: raw };
    }
    if (raw.length > MAX_MESSAGE_CHARS) return null;
    const msg = parseObject(raw);
    if (msg === null) return null;
    // `start` must be the first message, and comes once.
    if (this.encoding === null) return msg.t === 'start' ? this.parseStart(msg) : null;
    switch (msg.t) {
      case 'stop': {
        if (msg.reason === undefined) return { kind: 'end' };
        if (typeof msg.reason !== 'string') return null;
        // Cleaned and cut, never refused for its content: the stop itself always stands.
        const reason = cleanString(msg.reason, MAX_REASON);
        return reason === null ? { kind: 'end' } : { kind: 'end', reason };
      }
      case 'dtmf':
        return this.parseDtmf(msg);
      case 'text': {
        if (typeof msg.text !== 'string' || msg.text.length > NATIVE_MAX_TEXT) return null;
        const text = cleanString(msg.text, NATIVE_MAX_TEXT);
        return text === null ? null : { kind: 'text', text };
      }
      case 'mark': {
        const name = markName(msg.name);
        return name === null ? null : { kind: 'mark', name, status: 'played' };
      }
      case 'clear':
        return { kind: 'clear' };
      default:
        return null;
    }
  }

  serialize(frame: OutboundFrame): WireMessage | null {
    switch (frame.kind) {
      case 'audio_out': {
        // Binary audio means "the encoding and rate from start": anything else would be noise.
        if (frame.encoding !== this.encoding || frame.sampleRate !== this.sampleRate) return null;
        const size = frame.data.byteLength;
        return size === 0 || (frame.encoding === 'pcm16' && size % 2 !== 0) ? null : frame.data;
      }
      case 'mark': {
        const name = markName(frame.name);
        return name === null ? null : `{"t":"mark","name":${JSON.stringify(name)}}`;
      }
      case 'clear':
        return CLEAR_MESSAGE;
      case 'end':
        return frame.reason === undefined
          ? STOP_MESSAGE
          : JSON.stringify({ t: 'stop', reason: frame.reason });
      case 'transcript':
        return JSON.stringify({ t: 'transcript', text: frame.text, final: frame.final });
      case 'agent_text':
        return JSON.stringify({ t: 'agent_text', text: frame.text, final: frame.final });
      case 'error':
        return JSON.stringify({ t: 'error', code: frame.code, message: frame.message });
      case 'event':
        return serializeEvent(frame.name, frame.data);
      default:
        return null;
    }
  }

  private parseStart(msg: JsonObject): StartFrame | null {
    const { callId, agentId } = msg;
    if (!isSafeId(callId) || !isSafeId(agentId)) return null;
    const sampleRate = msg.sampleRate ?? NATIVE_DEFAULT_SAMPLE_RATE;
    const encoding = msg.encoding ?? NATIVE_DEFAULT_ENCODING;
    if (typeof sampleRate !== 'number' || !NATIVE_SAMPLE_RATES.includes(sampleRate)) return null;
    const known = NATIVE_ENCODINGS.find((e) => e === encoding);
    if (known === undefined) return null;

    this.encoding = known;
    this.sampleRate = sampleRate;
    return {
      kind: 'start',
      callId,
      encoding: this.encoding,
      sampleRate,
      channels: 1,
      params: { agentId },
      call: {},
    };
  }

  private parseDtmf(msg: JsonObject): InboundFrame | null {
    const { digit, durationMs } = msg;
    if (!isDtmfDigit(digit)) return null;
    if (durationMs === undefined) return { kind: 'dtmf', digit };
    if (typeof durationMs !== 'number' || !(durationMs >= 0 && durationMs <= MAX_DTMF_MS)) return null;
    return { kind: 'dtmf', digit, durationMs };
  }
}

/** `{"t":"event","name","data"?}`; null if `data` cannot be JSON (cycles, BigInt). */
function serializeEvent(name: string, data: Record<string, unknown> | undefined): string | null {
  try {
    return JSON.stringify(data === undefined ? { t: 'event', name } : { t: 'event', name, data });
  } catch {
    return null;
  }
}
