/**
 * The Twilio Media Streams call scenario, as plain functions with no runtime APIs, so the k6
 * script (`perf/k6/voice-ws.ts`) and the Bun load generator (`perf/local/voice-bench.ts`) run
 * the same logic: what a call sends, at what pace, and how its answers are judged.
 */

/** One 20 ms frame per message, as Twilio sends them: 160 bytes of 8 kHz mu-law. */
export const FRAME_MS = 20;
export const FRAME_BYTES = 160;

/** A call's identity on the wire. */
export interface StreamIds {
  callSid: string;
  streamSid: string;
}

/** Twilio-shaped ids for call number `n` of a run (34 characters, like the real ones). */
export function streamIds(runId: string, n: number): StreamIds {
  const tail = `${runId}${n.toString(16)}`
    .replace(/[^0-9a-f]/gi, '')
    .slice(-32)
    .padStart(32, '0');
  return { callSid: `CA${tail}`, streamSid: `MZ${tail}` };
}

/** The `connected` message Twilio sends first. */
export function connectedMessage(): string {
  return '{"event":"connected","protocol":"Call","version":"1.0.0"}';
}

/** The `start` message, carrying the stream token as a custom parameter. */
export function startMessage(ids: StreamIds, token: string, agentId: string): string {
  return JSON.stringify({
    event: 'start',
    sequenceNumber: '1',
    start: {
      accountSid: 'AC00000000000000000000000000000000',
      streamSid: ids.streamSid,
      callSid: ids.callSid,
      tracks: ['inbound'],
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
      customParameters: { token, agentId },
    },
    streamSid: ids.streamSid,
  });
}

/** Width of the numeric string fields: fixed, so a runner can patch digits in place. */
export const NUMBER_WIDTH = 9;

function fixed(n: number): string {
  return String(n).padStart(NUMBER_WIDTH, '0');
}

/**
 * Media message number `seq` (0-based) with a base64 mu-law payload of one frame. Twilio sends
 * these numbers as strings; they are zero-padded to a fixed width (same values) so the message
 * layout never changes during a call.
 */
export function mediaMessage(ids: StreamIds, seq: number, payloadB64: string): string {
  return `{"event":"media","sequenceNumber":"${fixed(seq + 2)}","media":{"track":"inbound","chunk":"${fixed(seq + 1)}","timestamp":"${fixed(seq * FRAME_MS)}","payload":"${payloadB64}"},"streamSid":"${ids.streamSid}"}`;
}

/** Where the three numeric fields sit in a media message, for patching them in place. */
export function mediaNumberOffsets(message: string): { sequence: number; chunk: number; timestamp: number } {
  const at = (field: string) => message.indexOf(`"${field}":"`) + field.length + 4;
  return { sequence: at('sequenceNumber'), chunk: at('chunk'), timestamp: at('timestamp') };
}

export function stopMessage(ids: StreamIds, seq: number): string {
  return `{"event":"stop","sequenceNumber":"${seq + 2}","stop":{"accountSid":"AC00000000000000000000000000000000","callSid":"${ids.callSid}"},"streamSid":"${ids.streamSid}"}`;
}

/** What a server message is, judged by its prefix (no parse on the hot path). */
export function classify(message: string): 'media' | 'mark' | 'clear' | 'other' {
  if (message.startsWith('{"event":"media"')) return 'media';
  if (message.startsWith('{"event":"mark"')) return 'mark';
  if (message.startsWith('{"event":"clear"')) return 'clear';
  return 'other';
}

/**
 * A 1 kHz-ish tone frame in mu-law (base64), made without any codec library so k6 can build it:
 * a fixed 8-sample cycle of mu-law bytes (1 kHz at 8 kHz), repeated.
 */
export const TONE_FRAME_B64 = (() => {
  // mu-law bytes of 0.5 FS * sin(2πk/8), k = 0..7 (G.711 encoding of 0, ±11585, ±16384).
  const cycle = [0xff, 0x99, 0x8f, 0x99, 0xff, 0x19, 0x0f, 0x19];
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const bytes: number[] = [];
  for (let i = 0; i < FRAME_BYTES; i++) bytes.push(cycle[i % 8]!);
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += alphabet[(n >> 18) & 63]! + alphabet[(n >> 12) & 63]!;
    out += i + 1 < bytes.length ? alphabet[(n >> 6) & 63]! : '=';
    out += i + 2 < bytes.length ? alphabet[n & 63]! : '=';
  }
  return out;
})();

/** Per-call counters both runners keep. */
export interface CallStats {
  sent: number;
  received: number;
  firstAudioMs: number | null;
}

export function newCallStats(): CallStats {
  return { sent: 0, received: 0, firstAudioMs: null };
}

/**
 * The thresholds the voice scenario must meet, shared by k6 (as `thresholds`) and the local
 * runner (checked after the run): audio comes back on (nearly) every call, quickly, and
 * (nearly) every frame sent is answered.
 */
export const VOICE_THRESHOLDS = {
  /** Share of calls that heard audio back. */
  callsWithAudioRate: 0.99,
  /** p95 time from the first frame sent to the first audio heard, ms. */
  firstAudioP95Ms: 1000,
  /** Share of sent frames answered with a frame (loopback agent). */
  frameAnswerRate: 0.99,
} as const;
