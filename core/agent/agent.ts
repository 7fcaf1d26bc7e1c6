/**
 * The seam between a call session and the agent's brain. The session owns transport, timing,
 * playout, barge-in and every way a call ends; the agent hears (audio, speech start/end, DTMF,
 * typed text) and speaks through speech handles it can follow and cancel. Hooks may be async:
 * the session catches what they throw (logged, on the timeline, a spoken apology, a clean end).
 */
import type { WireProtocol } from '../wire/frames.ts';
import type { AgentRecord } from './config.ts';
import type { AudioChunk } from './providers/types.ts';

/** Who is on the call and why, as the provider and control told us. */
export interface CallInfo {
  callId: string;
  agentId: string;
  accountId?: string;
  direction: 'inbound' | 'outbound';
  from?: string;
  to?: string;
  provider: WireProtocol;
  /** Custom parameters the provider or client passed with the stream. */
  params: Record<string, string>;
  /** A campaign contact's variables (name, …), for greetings and prompts. */
  variables: Record<string, string>;
}

/** How an utterance ended: what the caller heard of it. */
export interface SpeechResult {
  /** Cut short: barge-in, `cancel()`, or the call ended. */
  interrupted: boolean;
  /** Audio sent to the caller, ms (paced at real time, so about what was heard). */
  playedMs: number;
  /** The words the caller heard: from word timings, else the text spread over its audio. */
  playedText: string;
  /** The whole utterance's audio, ms, as far as it was synthesised. */
  totalMs: number;
}

/** One utterance the agent asked for. */
export interface SpeechHandle {
  readonly id: string;
  /** Resolves once the utterance has played out or was cut short. Never rejects. */
  readonly done: Promise<SpeechResult>;
  /** Aborted when the utterance is interrupted or cancelled (stop synthesising). */
  readonly signal: AbortSignal;
  /** Resolves when its first frame is sent (session clock ms), or null if it never played. */
  readonly started: Promise<number | null>;
  /** When the voice produced its first audio (session clock ms), once it has. */
  readonly firstAudioAt: number | null;
  /** Stops it now: queued audio is dropped and the provider's buffer cleared. */
  cancel(): void;
  /**
   * After a false interruption (the caller made a sound, said nothing): plays the part the
   * caller has not heard yet as a new handle. Null when nothing is left.
   */
  resume(): SpeechHandle | null;
}

/** What the agent says: text (the session's voice speaks it) or audio it synthesised itself. */
export type SpeechSource = string | AsyncIterable<string> | AsyncIterable<AudioChunk>;

export interface SayOptions {
  /** Whether caller speech may cut it off. Default: the agent's `bargeIn`. */
  allowInterruptions?: boolean;
  /** Shown to native clients as `agent_text` and recorded; default on. */
  record?: boolean;
}

/** What an agent may do to its call. Audio is PCM16 mono at `sampleRate`. */
export interface AgentContext {
  readonly call: CallInfo;
  readonly config: AgentRecord;
  readonly callId: string;
  readonly agentId: string;
  /** The pipeline rate: inbound audio arrives at it; `play` takes it; `say` resamples. */
  readonly sampleRate: number;
  /** Aborted when the call ends. */
  readonly signal: AbortSignal;
  /** Speaks; the handle tells what was heard. */
  say(source: SpeechSource, opts?: SayOptions): SpeechHandle;
  /** The utterance playing now, if any. */
  readonly currentSpeech: SpeechHandle | null;
  /** Raw audio for diagnostic brains (echo, loopback); a mark named `mark` follows it. */
  play(pcm: Int16Array, opts?: { mark?: string }): void;
  /** True while queued audio remains. */
  readonly playing: boolean;
  /** Stops playout now and clears the provider's buffer. */
  interrupt(reason: string): void;
  /** The caller's words, for native clients (`transcript` frames) and the timeline. */
  sendTranscript(text: string, final: boolean, data?: Record<string, unknown>): void;
  /** Text the agent says, for native clients (`agent_text`). */
  sendText(text: string, final: boolean): void;
  /** Appends a step to the call's timeline. */
  event(type: string, data?: Record<string, unknown>): void;
  /** Ends the call. */
  hangup(reason: string): void;
  /** Something failed that no hook can report: apologise aloud and end the call. */
  fail(where: string, err: unknown): void;
  /** Hands the caller to a number or SIP URI through the provider; rejects when it cannot. */
  transfer(to: string): Promise<void>;
}

/** A finished caller turn, as the endpointer saw it. */
export interface UserTurn {
  /** 1-based turn number within the call. */
  index: number;
  /** Speech from its detected start to the end of speech (not the trailing silence). */
  durationMs: number;
  /** Silence heard after the last speech before the turn was closed (the endpointing delay). */
  trailingSilenceMs: number;
}

/** The agent's brain, one instance per call. Every hook but `start` is optional and may be async. */
export interface Agent {
  readonly kind: string;
  /** The call is up: greet, or wait. */
  start(ctx: AgentContext): void | Promise<void>;
  /**
   * Every inbound 20 ms frame at the pipeline rate, speech or not (streaming STT feeds on it).
   * The array is reused after the call returns: copy what you keep.
   */
  onAudio?(pcm: Int16Array, speaking: boolean): void;
  onSpeechStart?(): void | Promise<void>;
  /** The VAD heard `minMs` of silence after speech. */
  onTurnEnd?(turn: UserTurn): void | Promise<void>;
  /** Caller speech cut the agent off (after `interruptMinMs`), or a client cleared playout. */
  onInterrupted?(speech: SpeechHandle, result: SpeechResult): void | Promise<void>;
  onDtmf?(digit: string): void | Promise<void>;
  onText?(text: string): void | Promise<void>;
  onMark?(name: string, status: 'played' | 'cleared'): void;
  /** A live `say` command from the API. Default: the session speaks it. */
  onCommandSay?(text: string): void | Promise<void>;
  close?(reason: string): void;
}
