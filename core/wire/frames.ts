/**
 * The internal frames every wire codec translates to and from. The session sees only these,
 * never provider JSON (pipecat's serializer shape: codecs translate, sessions decide).
 */

/** Audio encodings that cross the wire. `pcm16` is signed 16-bit little-endian. */
export type AudioEncoding = 'pcm16' | 'mulaw' | 'alaw';

/** Call metadata announced by the provider when the stream starts. */
export interface StartFrame {
  kind: 'start';
  /** Provider call id (Twilio CallSid, Jambonz call_sid, Telnyx call_control_id, native callId). */
  callId: string;
  /** Provider stream id where the protocol has one (Twilio streamSid, Telnyx stream_id). */
  streamId?: string;
  encoding: AudioEncoding;
  sampleRate: number;
  channels: number;
  /** Custom parameters / metadata passed through the provider (agentId, token, ...). */
  params: Record<string, string>;
  /** Whatever else the provider said about the call (from, to, direction ...), as strings. */
  call: Record<string, string>;
}

/** Caller audio. `data` is raw encoded bytes (base64 already decoded); may be a view. */
export interface AudioInFrame {
  kind: 'audio_in';
  encoding: AudioEncoding;
  sampleRate: number;
  data: Uint8Array;
  /** Provider timestamp in ms since stream start, where it gives one. */
  timestampMs?: number;
}

/** Agent audio to play to the caller, already in the wire's encoding and rate. */
export interface AudioOutFrame {
  kind: 'audio_out';
  encoding: AudioEncoding;
  sampleRate: number;
  data: Uint8Array;
}

export interface DtmfFrame {
  kind: 'dtmf';
  digit: string;
  durationMs?: number;
}

/**
 * A named point in the outbound audio. Outbound: ask the provider to report when playout
 * reaches it. Inbound: the provider reports it played (`played`) or dropped it (`cleared`).
 */
export interface MarkFrame {
  kind: 'mark';
  name: string;
  status?: 'played' | 'cleared';
}

/** Drop all buffered outbound audio (barge-in). */
export interface ClearFrame {
  kind: 'clear';
}

/** The stream ended (inbound: provider stop) or must end (outbound: disconnect). */
export interface EndFrame {
  kind: 'end';
  reason?: string;
}

/** Text from the client (native protocol: typed user input). */
export interface TextFrame {
  kind: 'text';
  text: string;
}

/** Session → client notifications (native protocol only; telephony codecs drop them). */
export interface TranscriptFrame {
  kind: 'transcript';
  text: string;
  final: boolean;
}
export interface AgentTextFrame {
  kind: 'agent_text';
  text: string;
  final: boolean;
}
export interface EventFrame {
  kind: 'event';
  name: string;
  data?: Record<string, unknown>;
}
export interface ErrorFrame {
  kind: 'error';
  code: string;
  message: string;
}

/**
 * A frame a provider or client sends us. Known informational messages (Twilio `connected`,
 * Jambonz `playDone`) arrive as an EventFrame; a provider-reported error as an ErrorFrame.
 * Only unrecognised or malformed input makes `parse` return null.
 */
export type InboundFrame =
  | StartFrame
  | AudioInFrame
  | DtmfFrame
  | MarkFrame
  | EndFrame
  | TextFrame
  | ClearFrame
  | EventFrame
  | ErrorFrame;

/** A frame we send a provider or client. */
export type OutboundFrame =
  | AudioOutFrame
  | MarkFrame
  | ClearFrame
  | EndFrame
  | TranscriptFrame
  | AgentTextFrame
  | EventFrame
  | ErrorFrame;

export type Frame = InboundFrame | OutboundFrame;

/** Raw WebSocket payload as Bun delivers it. */
export type WireMessage = string | Uint8Array;

/**
 * One per WebSocket protocol. `parse` never throws: unknown or malformed input returns null
 * (the caller counts it). `serialize` returns null for frames the protocol cannot carry.
 * A codec may keep per-connection state (the stream id learned from `start`), so create one
 * per socket via its factory.
 */
export interface WireCodec {
  readonly protocol: WireProtocol;
  parse(raw: WireMessage): InboundFrame | null;
  serialize(frame: OutboundFrame): WireMessage | null;
}

export type WireProtocol = 'twilio' | 'jambonz' | 'telnyx' | 'native';
