/**
 * Jambonz `listen` codec (docs/providers.md "Media protocols"; sources:
 * https://www.jambonz.org/docs/webhooks/listen/ and jambonz-feature-server `lib/tasks/listen.js`,
 * `lib/session/call-info.js`).
 *
 * The first text frame is the call metadata; after it, binary frames are L16 (signed 16-bit
 * little-endian PCM) at the listen verb's `sampleRate`. With `bidirectionalAudio.streaming` we
 * answer with binary L16 at `bidirectionalAudio.sampleRate`, which the codec is built with.
 */
import type { InboundFrame, OutboundFrame, StartFrame, WireCodec, WireMessage } from './frames.ts';
import { SANITIZE_LIMITS, sanitizeJson, sanitizeText } from './sanitize.ts';
import {
  asObject,
  isDtmfDigit,
  isSafeId,
  type JsonObject,
  MAX_AUDIO_BYTES,
  markName,
  parseObject,
  toNumber,
} from './wire-helpers.ts';

/** The WebSocket subprotocol Jambonz requests for `listen` streams. */
export const JAMBONZ_SUBPROTOCOL = 'audio.jambonz.org';

/**
 * Keys of Jambonz's CallInfo as `listen` sends it (call-info.js `toJSON()`): these go to
 * `StartFrame.call`; every other top-level string/number key is the verb's `metadata` and goes
 * to `params`. The Jambonz docs list the first ten; the rest are sent by current Jambonz too.
 */
const CALL_FIELDS = new Set([
  'callSid',
  'direction',
  'from',
  'to',
  'callId',
  'sipStatus',
  'callStatus',
  'accountSid',
  'applicationSid',
  'customerData',
  'sbcCallid',
  'sipReason',
  'callerId',
  'traceId',
  'fsSipAddress',
  'parentCallSid',
  'originatingSipIp',
  'originatingSipTrunkName',
  'callTerminationBy',
  'duration',
  'headers',
  'apiBaseUrl',
  'fsPublicIp',
]);

/** Keys `listen` itself puts first (`{sampleRate, mixType}`); neither call nor params. */
const STREAM_FIELDS = new Set(['sampleRate', 'mixType']);

/** Fixed outbound control messages (docs/providers.md, "Media protocols", Jambonz). */
const KILL_AUDIO = '{"type":"killAudio"}';
const DISCONNECT = '{"type":"disconnect"}';
const MARK_PREFIX = '{"type":"mark","data":{"name":';

export interface JambonzCodecOptions {
  /** `bidirectionalAudio.sampleRate` of the listen verb we answered with: the rate we send at. */
  outSampleRate: number;
  /** Inbound binary frames larger than this many bytes are dropped. */
  maxAudioBytes?: number;
}

/**
 * One per Jambonz listen WebSocket. State: whether the metadata frame has arrived and the
 * negotiated inbound rate and channel count.
 */
export class JambonzCodec implements WireCodec {
  readonly protocol = 'jambonz' as const;
  private readonly outSampleRate: number;
  private readonly maxAudioBytes: number;
  private started = false;
  private sampleRate = 0;
  /** Bytes per sample frame: 2 (mono) or 4 (stereo, interleaved). */
  private frameBytes = 2;

  constructor(options: JambonzCodecOptions) {
    this.outSampleRate = options.outSampleRate;
    this.maxAudioBytes = options.maxAudioBytes ?? MAX_AUDIO_BYTES;
  }

  parse(raw: WireMessage): InboundFrame | null {
    if (typeof raw !== 'string') return this.parseAudio(raw);
    const msg = parseObject(raw);
    if (msg === null) return null;
    if (!this.started) return this.parseMetadata(msg);
    if (msg.event === 'dtmf') return this.parseDtmf(msg);
    switch (msg.type) {
      case 'mark': {
        const data = asObject(msg.data);
        const name = markName(data?.name);
        if (name === null) return null;
        if (data?.event === 'playout') return { kind: 'mark', name, status: 'played' };
        if (data?.event === 'cleared') return { kind: 'mark', name, status: 'cleared' };
        return null;
      }
      case 'playDone': {
        const data = asObject(msg.data);
        return data === null
          ? { kind: 'event', name: 'playDone' }
          : {
              kind: 'event',
              name: 'playDone',
              data: sanitizeJson(data, { maxString: SANITIZE_LIMITS.reason, maxDepth: 4 }) as JsonObject,
            };
      }
      default:
        return null;
    }
  }

  serialize(frame: OutboundFrame): WireMessage | null {
    switch (frame.kind) {
      case 'audio_out': {
        // Streaming bidirectional audio is raw L16 at the verb's rate: a wrong rate plays too
        // fast or too slow (docs/providers.md), so refuse rather than send it.
        const size = frame.data.byteLength;
        if (frame.encoding !== 'pcm16' || frame.sampleRate !== this.outSampleRate) return null;
        return size === 0 || size % 2 !== 0 ? null : frame.data;
      }
      case 'clear':
        return KILL_AUDIO;
      case 'mark': {
        const name = markName(frame.name);
        return name === null ? null : `${MARK_PREFIX}${JSON.stringify(name)}}}`;
      }
      case 'end':
        return DISCONNECT;
      default:
        return null;
    }
  }

  /** Binary L16. Audio before the metadata has no known rate; a partial sample frame is malformed. */
  private parseAudio(data: Uint8Array): InboundFrame | null {
    const size = data.byteLength;
    if (!this.started || size === 0 || size > this.maxAudioBytes) return null;
    if (size % this.frameBytes !== 0) return null;
    return { kind: 'audio_in', encoding: 'pcm16', sampleRate: this.sampleRate, data };
  }

  /** `Object.assign({sampleRate, mixType}, callInfo, metadata)` (listen.js `_startListening`). */
  private parseMetadata(msg: JsonObject): StartFrame | null {
    const callSid = msg.callSid;
    const sampleRate = toNumber(msg.sampleRate);
    if (!isSafeId(callSid) || sampleRate === undefined) return null;
    if (!Number.isInteger(sampleRate) || sampleRate < 8000 || sampleRate > 192000) return null;
    const channels = msg.mixType === 'stereo' ? 2 : 1;

    const call: Record<string, string> = {};
    const params: Record<string, string> = {};
    for (const key of Object.keys(msg)) {
      if (STREAM_FIELDS.has(key)) continue;
      const raw = fieldText(msg[key], CALL_FIELDS.has(key));
      if (raw === undefined) continue;
      // Metadata reaches the Store and Postgres: cleaned and bounded like every wire string.
      const name = sanitizeText(key, SANITIZE_LIMITS.key);
      if (name.length === 0) continue;
      const text = sanitizeText(raw, SANITIZE_LIMITS.value);
      if (CALL_FIELDS.has(key)) call[name] = text;
      else params[name] = text;
    }

    this.started = true;
    this.sampleRate = sampleRate;
    this.frameBytes = 2 * channels;
    return { kind: 'start', callId: callSid, encoding: 'pcm16', sampleRate, channels, params, call };
  }

  /**
   * `{event: 'dtmf', dtmf, duration}` (listen.js `_onDtmf`); `duration` is in 8 kHz RTP timestamp
   * units (listen.js computes ms as duration / 8000 * 1000).
   */
  private parseDtmf(msg: JsonObject): InboundFrame | null {
    const digit = msg.dtmf;
    if (!isDtmfDigit(digit)) return null;
    const duration = toNumber(msg.duration);
    return duration === undefined || duration < 0
      ? { kind: 'dtmf', digit }
      : { kind: 'dtmf', digit, durationMs: Math.round(duration / 8) };
  }
}

/**
 * A metadata value as a string: strings, numbers and booleans as-is; objects only for call
 * fields (customerData is the `tag` object, headers the SIP headers), as JSON.
 */
function fieldText(value: unknown, isCallField: boolean): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (isCallField && typeof value === 'object' && value !== null) return JSON.stringify(value);
  return undefined;
}
