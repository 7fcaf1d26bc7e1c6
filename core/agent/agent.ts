/**
 * The seam between a call session and the agent's brain. A session owns transport, timing,
 * playout and barge-in; an Agent only hears (audio, turns, DTMF, text) and speaks (PCM to play,
 * text for clients). The real brain (STT → LLM with tools → TTS) implements this same interface.
 */

/** What an agent may do to its call. Audio is PCM16 mono at `sampleRate`. */
export interface AgentContext {
  readonly callId: string;
  readonly agentId: string;
  /** The pipeline rate: inbound audio arrives at it and outbound audio must be at it. */
  readonly sampleRate: number;
  /** Queues audio (copied) for real-time playout; a mark named `mark` is sent when it ends. */
  play(pcm: Int16Array, opts?: { mark?: string }): void;
  /** True while queued audio remains. */
  readonly playing: boolean;
  /** Stops playout now and clears the provider's buffer (barge-in). */
  interrupt(reason: string): void;
  /** Text the agent says, for clients that show it (native protocol). */
  sendText(text: string, final: boolean): void;
  /** Appends a step to the call's timeline. */
  event(type: string, data?: Record<string, unknown>): void;
  /** Ends the call. */
  hangup(reason: string): void;
}

/** A finished user turn, as the endpointer saw it. */
export interface UserTurn {
  /** 1-based turn number within the call. */
  index: number;
  /** Speech from its detected start to the end of speech (not the trailing silence). */
  durationMs: number;
  /** Silence heard after the last speech before the turn was closed (the endpointing delay). */
  trailingSilenceMs: number;
}

/** The agent's brain, one instance per call. Every hook is optional except `start`. */
export interface Agent {
  readonly kind: string;
  /** The call is up: greet, or wait. */
  start(ctx: AgentContext): void | Promise<void>;
  /**
   * Every inbound 20 ms frame at the pipeline rate, speech or not (streaming STT feeds on it).
   * The array is reused after the call returns: copy what you keep.
   */
  onAudio?(pcm: Int16Array, speaking: boolean): void;
  onSpeechStart?(): void;
  onTurnEnd?(turn: UserTurn): void;
  onDtmf?(digit: string): void;
  onText?(text: string): void;
  onMark?(name: string, status: 'played' | 'cleared'): void;
  close?(reason: string): void;
}

/** Agent configuration as control mirrors it into the Store (`agent:<id>`). */
export interface AgentConfig {
  id: string;
  /**
   * Which brain runs the call. This core runs `echo` and `loopback`; `scripted` and `llm`
   * (configurable through control) are refused until the agent brain is built.
   */
  brain: 'echo' | 'loopback' | 'scripted' | 'llm';
  accountId?: string;
  /** Pipeline rate; default: the wire's rate (no resampling). */
  sampleRate?: number;
  /** Whether caller speech interrupts the agent. Default true. */
  bargeIn?: boolean;
  /** End-of-turn silence, ms. Default 500. */
  endpointingMs?: number;
  /** Hang up after this long, seconds. */
  maxDurationSec?: number;
}
