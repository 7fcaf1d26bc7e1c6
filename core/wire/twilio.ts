/**
 * Twilio Media Streams codec (docs/providers.md "Media protocols"; source:
 * https://www.twilio.com/docs/voice/media-streams/websocket-messages).
 *
 * JSON text frames only, both ways. Audio is always mu-law at 8000 Hz, mono, base64 in
 * `media.payload`. Outbound messages must carry the `streamSid` learned from `start`, so this
 * codec serializes nothing that needs it until `start` has been parsed.
 */
import type { InboundFrame, OutboundFrame, StartFrame, WireCodec, WireMessage } from './frames.ts';
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

/** Twilio's only audio format: "audio/x-mulaw", 8000 Hz, one channel (docs/providers.md). */
const TWILIO_RATE = 8000;

export interface TwilioCodecOptions {
  /** Inbound media payloads decoding to more than this many bytes are dropped. */
  maxAudioBytes?: number;
}

/** Keys the media fast path looks for (Twilio's own spelling, no whitespace). */
const MEDIA_PREFIX = '{"event":"media"';
const PAYLOAD_KEY = '"payload":"';
const TRACK_KEY = '"track":"';
const TIMESTAMP_KEY = '"timestamp":"';

/**
 * One per Twilio media WebSocket. Keeps the `streamSid` from `start` and pre-builds the
 * outbound message prefixes around it, so sending 20 ms of audio is one base64 encode and one
 * string concatenation.
 */
export class TwilioCodec implements WireCodec {
  readonly protocol = 'twilio' as const;
  private readonly maxAudioBytes: number;
  private streamSid: string | null = null;
  private mediaPrefix = '';
  private markPrefix = '';
  private clearMessage = '';

  constructor(options: TwilioCodecOptions = {}) {
    this.maxAudioBytes = options.maxAudioBytes ?? MAX_AUDIO_BYTES;
  }

  /** The stream id learned from `start`, or null before it. */
  get streamId(): string | null {
    return this.streamSid;
  }

  parse(raw: WireMessage): InboundFrame | null {
    // Twilio never sends binary frames; anything binary is not Twilio.
    if (typeof raw !== 'string') return null;
    if (raw.startsWith(MEDIA_PREFIX)) {
      const fast = this.parseMediaFast(raw);
      if (fast !== undefined) return fast;
    }
    const msg = parseObject(raw);
    if (msg === null) return null;
    switch (msg.event) {
      case 'media':
        return this.parseMedia(msg);
      case 'start':
        return this.parseStart(msg);
      case 'connected':
        return {
          kind: 'event',
          name: 'connected',
          data: stringFields({ protocol: msg.protocol, version: msg.version }),
        };
      case 'dtmf': {
        const digit = asObject(msg.dtmf)?.digit;
        return isDtmfDigit(digit) ? { kind: 'dtmf', digit } : null;
      }
      case 'mark': {
        // Twilio echoes a mark when playout reaches it, and also for every pending mark after a
        // `clear`; the message is the same, so the session tells the two apart by its own clears.
        const name = markName(asObject(msg.mark)?.name);
        return name === null ? null : { kind: 'mark', name, status: 'played' };
      }
      case 'stop':
        return { kind: 'end', reason: 'stop' };
      default:
        return null;
    }
  }

  serialize(frame: OutboundFrame): WireMessage | null {
    if (this.streamSid === null) return null; // every outbound message needs the streamSid
    switch (frame.kind) {
      case 'audio_out':
        // Twilio plays only mu-law 8000; anything else would be noise (error 31951 at best).
        if (frame.encoding !== 'mulaw' || frame.sampleRate !== TWILIO_RATE) return null;
        if (frame.data.byteLength === 0) return null;
        return `${this.mediaPrefix}${encodeBase64(frame.data)}"}}`;
      case 'mark': {
        const name = markName(frame.name);
        return name === null ? null : `${this.markPrefix}${JSON.stringify(name)}}}`;
      }
      case 'clear':
        return this.clearMessage;
      default:
        // Ending a Twilio call is a REST call (telephony/), not a stream message.
        return null;
    }
  }

  /**
   * The hot path: 50 media messages a second per call. Finds payload, track and timestamp by
   * their keys instead of building the whole JSON object graph. Returns undefined (so the full
   * parser decides) for anything that is not the plain shape Twilio sends, e.g. escapes.
   */
  private parseMediaFast(raw: string): InboundFrame | null | undefined {
    const p = raw.indexOf(PAYLOAD_KEY);
    if (p < 0) return undefined;
    const start = p + PAYLOAD_KEY.length;
    const end = raw.indexOf('"', start);
    if (end < 0 || raw.charCodeAt(end - 1) === 92 /* backslash */) return undefined;
    const t = raw.indexOf(TRACK_KEY);
    if (t >= 0 && !raw.startsWith('inbound"', t + TRACK_KEY.length)) return null;
    const data = decodeBase64Audio(raw.slice(start, end), this.maxAudioBytes);
    if (data === null) return null;
    const ts = raw.indexOf(TIMESTAMP_KEY);
    if (ts < 0) return { kind: 'audio_in', encoding: 'mulaw', sampleRate: TWILIO_RATE, data };
    let timestampMs = 0;
    let i = ts + TIMESTAMP_KEY.length;
    for (let c = raw.charCodeAt(i); c >= 48 && c <= 57; c = raw.charCodeAt(++i))
      timestampMs = timestampMs * 10 + c - 48;
    if (raw.charCodeAt(i) !== 34 /* closing quote */) return undefined;
    return { kind: 'audio_in', encoding: 'mulaw', sampleRate: TWILIO_RATE, data, timestampMs };
  }

  /**
   * Media may arrive before `start` is parsed (or after a `start` we refused); Twilio audio is
   * always mu-law 8000, so it is still decoded and the session decides whether to use it.
   */
  private parseMedia(msg: JsonObject): InboundFrame | null {
    const media = asObject(msg.media);
    if (media === null) return null;
    // Only the caller's audio: with `<Start><Stream track="both_tracks">` Twilio also sends ours.
    if (media.track !== undefined && media.track !== 'inbound') return null;
    const data = decodeBase64Audio(media.payload, this.maxAudioBytes);
    if (data === null) return null;
    const timestampMs = toNumber(media.timestamp);
    return timestampMs === undefined || timestampMs < 0
      ? { kind: 'audio_in', encoding: 'mulaw', sampleRate: TWILIO_RATE, data }
      : { kind: 'audio_in', encoding: 'mulaw', sampleRate: TWILIO_RATE, data, timestampMs };
  }

  private parseStart(msg: JsonObject): StartFrame | null {
    const start = asObject(msg.start);
    if (start === null) return null;
    const streamSid = start.streamSid ?? msg.streamSid;
    const callSid = start.callSid;
    // Validated once here so they can be embedded in outbound JSON without escaping.
    if (!isSafeId(streamSid) || !isSafeId(callSid)) return null;

    const call = stringFields({ accountSid: start.accountSid });
    if (Array.isArray(start.tracks))
      stringFields({ tracks: start.tracks.filter((t) => typeof t === 'string').join(',') }, call);

    this.streamSid = streamSid;
    this.mediaPrefix = `{"event":"media","streamSid":"${streamSid}","media":{"payload":"`;
    this.markPrefix = `{"event":"mark","streamSid":"${streamSid}","mark":{"name":`;
    this.clearMessage = `{"event":"clear","streamSid":"${streamSid}"}`;
    return {
      kind: 'start',
      callId: callSid,
      streamId: streamSid,
      encoding: 'mulaw',
      sampleRate: TWILIO_RATE,
      channels: 1,
      params: stringFields(asObject(start.customParameters)),
      call,
    };
  }
}
