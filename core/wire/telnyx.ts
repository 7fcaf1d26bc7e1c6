/**
 * Telnyx media streaming codec. Source: Telnyx, "Stream call media over WebSocket"
 * (https://developers.telnyx.com/api-reference/websockets/stream-call-media-over-websocket)
 * and "Media Streaming" (https://developers.telnyx.com/docs/voice/programmable-voice/media-streaming).
 *
 * Twilio's shape in snake_case: `stream_id` at the top level, call data in `start`, the codec in
 * `start.media_format`. Two-way audio needs `stream_bidirectional_mode=rtp`; we send
 * `{"event":"media","media":{"payload":…}}` in the stream's own codec. Telnyx does not promise
 * frame order (`media.chunk`/`sequence_number` exist for reordering); this codec passes
 * `timestampMs` through and leaves ordering to the session.
 */
import type { AudioEncoding, InboundFrame, OutboundFrame, WireCodec, WireMessage } from './frames.ts';
import { cleanString, SANITIZE_LIMITS, sanitizeText } from './sanitize.ts';
import {
  asObject,
  decodeBase64Audio,
  encodeBase64,
  isDtmfDigit,
  isSafeId,
  type JsonObject,
  MAX_AUDIO_BYTES,
  markName,
  parseObject,
  stringFields,
  toNumber,
} from './wire-helpers.ts';

/**
 * RTP payload names we can carry. Telnyx also offers G722, OPUS, AMR-WB and L16 (docs above);
 * the session has no decoder for them, so a start announcing one becomes an ErrorFrame.
 */
const ENCODINGS: Readonly<Record<string, AudioEncoding>> = { PCMU: 'mulaw', PCMA: 'alaw' };

/** Outbound messages that carry no per-stream data. */
const CLEAR_MESSAGE = '{"event":"clear"}';
const MEDIA_PREFIX = '{"event":"media","media":{"payload":"';
const MARK_PREFIX = '{"event":"mark","mark":{"name":';

export interface TelnyxCodecOptions {
  /** Inbound media payloads decoding to more than this many bytes are dropped. */
  maxAudioBytes?: number;
}

/**
 * One per Telnyx media WebSocket. The codec (PCMU or PCMA) and rate are learned from `start`;
 * media before a usable `start` is dropped, because unlike Twilio the encoding is negotiated.
 */
export class TelnyxCodec implements WireCodec {
  readonly protocol = 'telnyx' as const;
  private readonly maxAudioBytes: number;
  private encoding: AudioEncoding | null = null;
  private sampleRate = 8000;
  private streamIdValue: string | null = null;

  constructor(options: TelnyxCodecOptions = {}) {
    this.maxAudioBytes = options.maxAudioBytes ?? MAX_AUDIO_BYTES;
  }

  /** The `stream_id` learned from `start`, or null before it. */
  get streamId(): string | null {
    return this.streamIdValue;
  }

  parse(raw: WireMessage): InboundFrame | null {
    if (typeof raw !== 'string') return null;
    const msg = parseObject(raw);
    if (msg === null) return null;
    switch (msg.event) {
      case 'media':
        return this.parseMedia(msg);
      case 'start':
        return this.parseStart(msg);
      case 'connected':
        // `connected` may also echo the streaming auth token: never pass it on (it would be logged).
        return { kind: 'event', name: 'connected', data: stringFields({ version: msg.version }) };
      case 'dtmf': {
        const digit = asObject(msg.dtmf)?.digit;
        return isDtmfDigit(digit) ? { kind: 'dtmf', digit } : null;
      }
      case 'mark': {
        // Sent when playout passes the mark, or for queued marks after `clear` (same message).
        const name = markName(asObject(msg.mark)?.name);
        return name === null ? null : { kind: 'mark', name, status: 'played' };
      }
      case 'stop':
        return { kind: 'end', reason: 'stop' };
      case 'error':
        return this.parseError(msg);
      default:
        return null;
    }
  }

  serialize(frame: OutboundFrame): WireMessage | null {
    switch (frame.kind) {
      case 'audio_out':
        // Telnyx plays RTP payloads as-is: only the stream's own codec and rate make sense.
        if (frame.encoding !== this.encoding || frame.sampleRate !== this.sampleRate) return null;
        if (frame.data.byteLength === 0) return null;
        return `${MEDIA_PREFIX}${encodeBase64(frame.data)}"}}`;
      case 'mark': {
        const name = markName(frame.name);
        return name === null ? null : `${MARK_PREFIX}${JSON.stringify(name)}}}`;
      }
      case 'clear':
        return CLEAR_MESSAGE;
      default:
        // Hanging up is a Call Control REST command (telephony/), not a stream message.
        return null;
    }
  }

  private parseMedia(msg: JsonObject): InboundFrame | null {
    if (this.encoding === null) return null;
    const media = asObject(msg.media);
    if (media === null) return null;
    // With stream_track=both_tracks Telnyx also streams our own audio back: keep the caller's.
    if (media.track !== undefined && media.track !== 'inbound') return null;
    const data = decodeBase64Audio(media.payload, this.maxAudioBytes);
    if (data === null) return null;
    const timestampMs = toNumber(media.timestamp);
    return timestampMs === undefined || timestampMs < 0
      ? { kind: 'audio_in', encoding: this.encoding, sampleRate: this.sampleRate, data }
      : { kind: 'audio_in', encoding: this.encoding, sampleRate: this.sampleRate, data, timestampMs };
  }

  private parseStart(msg: JsonObject): InboundFrame | null {
    const start = asObject(msg.start);
    if (start === null) return null;
    const streamId = msg.stream_id;
    const callId = start.call_control_id;
    if (!isSafeId(streamId) || !isSafeId(callId)) return null;

    const format = asObject(start.media_format);
    const name = format?.encoding;
    const encoding = typeof name === 'string' && Object.hasOwn(ENCODINGS, name) ? ENCODINGS[name] : undefined;
    const sampleRate = toNumber(format?.sample_rate) ?? 8000;
    const channels = toNumber(format?.channels) ?? 1;
    // G.711 is 8000 Hz; we ask for one track (inbound_track), so one channel.
    if (encoding === undefined || sampleRate !== 8000 || channels !== 1) {
      const described = JSON.stringify([name ?? null, sampleRate, channels]);
      return {
        kind: 'error',
        code: 'unsupported_encoding',
        message: sanitizeText(
          `Telnyx media_format [encoding, sample_rate, channels] ${described.slice(0, 200)} is not supported; use PCMU or PCMA at 8000 Hz mono`,
          SANITIZE_LIMITS.reason,
        ),
      };
    }

    const call = stringFields({
      from: start.from,
      to: start.to,
      callSessionId: start.call_session_id,
      userId: start.user_id,
      clientState: start.client_state,
    });
    if (Array.isArray(start.tags))
      stringFields({ tags: start.tags.filter((t) => typeof t === 'string').join(',') }, call);

    this.encoding = encoding;
    this.sampleRate = sampleRate;
    this.streamIdValue = streamId;
    return {
      kind: 'start',
      callId,
      streamId,
      encoding,
      sampleRate,
      channels,
      params: stringFields(asObject(start.custom_parameters)),
      call,
    };
  }

  /** Telnyx error frames carry `payload: {code, title, detail}`. */
  private parseError(msg: JsonObject): InboundFrame {
    const payload = asObject(msg.payload);
    const raw = payload?.code;
    const code =
      (typeof raw === 'number' && Number.isInteger(raw)) || isSafeId(raw) ? `telnyx_${raw}` : 'telnyx_error';
    const detail = cleanString(payload?.detail ?? payload?.title, SANITIZE_LIMITS.reason);
    return { kind: 'error', code, message: detail ?? 'Telnyx stream error' };
  }
}
