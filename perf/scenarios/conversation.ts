/**
 * The spoken-conversation scenario, as plain logic with no runtime APIs (no sockets, no timers,
 * no files), so the Bun load generator (`perf/local/agent-bench.ts`) and a later k6 script run
 * the same caller: what it sends each 20 ms, when a turn starts and ends, and how its answers
 * are judged.
 *
 * The caller speaks the native `/realtime/voice` protocol with PCM16 at 16 kHz (the pipeline
 * rate of conversational agents, so the server never resamples the caller). Each conversation
 * is a loop of turns: a speech clip frame by frame in real time, then silence until the reply
 * has played out (`agent.said`, or the echo agent's mark), a short pause, the next turn.
 */

import { DEMO_AGENT } from '../../control/demo-agent.ts';

/** One audio frame per message, 20 ms. */
export const FRAME_MS = 20;
/** The rate the caller sends and hears (native protocol, pcm16). */
export const CALLER_RATE = 16000;
export const FRAME_SAMPLES = (CALLER_RATE * FRAME_MS) / 1000;

/**
 * Silence after a reply before the caller speaks again. Longer than the session's window in
 * which caller speech still counts as a barge-in on audio that just finished (500 ms).
 */
export const PAUSE_AFTER_REPLY_MS = 700;

/** The agent ids the benchmark server seeds (`zero` and `demo`) and the built-in `echo`. */
export const BENCH_AGENT_IDS = { echo: 'echo', zero: 'bench-zero', demo: 'bench-demo' } as const;

/** What the fake recogniser returns for every turn, and the reply it must lead to. */
export const ZERO_TRANSCRIPT = 'what are your opening hours';

/** One thing a caller asks, and words the agent's reply must contain. */
export interface CallerIntent {
  name: string;
  /** The words the caller says (an example phrase of the intent). */
  ask: string;
  /** The intent's reply text, which the agent's `agent.said` must contain. */
  expect: string;
}

/** The demo agent's intents, each asked with its first example. */
export const DEMO_INTENTS: CallerIntent[] = (DEMO_AGENT.intents ?? []).map((i) => ({
  name: i.name,
  ask: i.examples[0]!,
  expect: i.reply,
}));

/** The hours intent: the one the zero-latency agent's fixed transcript asks. */
export const HOURS_INTENT: CallerIntent = DEMO_INTENTS.find((i) => i.name === 'hours')!;

/**
 * The agent of the platform-overhead run: the demo agent's brain and intents, with the `zero`
 * recogniser and voice (instant, fixed answers) and a one-word greeting.
 */
export function zeroAgentRecord(): Record<string, unknown> {
  return {
    ...DEMO_AGENT,
    name: 'Bench zero-latency agent',
    greeting: 'Hello.',
    stt: { provider: 'zero' },
    tts: { provider: 'zero' },
  };
}

/** The agent of the offline-capacity run: the demo agent exactly as `npm start` seeds it. */
export function demoAgentRecord(): Record<string, unknown> {
  return { ...DEMO_AGENT };
}

/** The `start` message of a native call (audio both ways at 16 kHz in `encoding`). */
export function startMessage(callId: string, agentId: string, encoding: 'pcm16' | 'mulaw' = 'pcm16'): string {
  return JSON.stringify({ t: 'start', callId, agentId, sampleRate: CALLER_RATE, encoding });
}

export function stopMessage(): string {
  return '{"t":"stop","reason":"bench_done"}';
}

/** The subprotocols a native client offers to authenticate with an API key. */
export function subprotocols(apiKey: string): string[] {
  return ['sipai.v1', `sipai.key.${apiKey}`];
}

/** The `turn.latency` event's data (ms). */
export interface TurnLatency {
  turn: number;
  endpointingMs: number;
  sttMs: number;
  llmFirstTokenMs: number;
  ttsFirstAudioMs: number | null;
  turnMs: number;
}

/** A server text message, as the caller cares about it. */
export type ServerMessage =
  | { kind: 'event'; name: string; data: Record<string, unknown> }
  | { kind: 'mark'; name: string }
  | { kind: 'error'; code: string; message: string }
  | { kind: 'stop'; reason: string }
  | { kind: 'other' };

/** Parses one server text frame; anything unexpected is `other`. */
export function parseServerText(text: string): ServerMessage {
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { kind: 'other' };
  }
  switch (m.t) {
    case 'event':
      return { kind: 'event', name: String(m.name), data: (m.data as Record<string, unknown>) ?? {} };
    case 'mark':
      return { kind: 'mark', name: String(m.name) };
    case 'error':
      return { kind: 'error', code: String(m.code), message: String(m.message) };
    case 'stop':
      return { kind: 'stop', reason: String(m.reason ?? '') };
    default:
      return { kind: 'other' };
  }
}

/** One caller turn, as measured at the caller. Times are the runner's clock, ms. */
export interface TurnRecord {
  /** 1-based turn of this conversation. */
  index: number;
  intent: CallerIntent;
  /** When the clip's last frame was sent: the end of the caller's speech. */
  endOfSpeechAt: number;
  /** The first agent audio frame after the end of speech. */
  firstAudioAt: number | null;
  latency: TurnLatency | null;
  /** What `agent.said` reported for the reply (null for the echo agent: it says nothing). */
  saidText: string | null;
  /** The reply finished (`agent.said` or the echo's mark) before the turn timed out. */
  completed: boolean;
  /** Filler lines ("One moment, please.") the agent said while the reply was late. */
  fillers: number;
}

/** What the runner sends in one 20 ms slot: frame `frame` of clip `clip`, or silence. */
export type FrameChoice = { kind: 'speech'; clip: number; frame: number } | { kind: 'silence' };

export interface CallerOptions {
  /** Clip lengths in frames, one per intent in `intents` (same order). */
  clipFrames: number[];
  intents: CallerIntent[];
  /** Which intent the first turn asks (then round-robin), so conversations differ. */
  firstIntent?: number;
  /** Wait for the agent's greeting (`agent.said`) before the first turn. */
  expectsGreeting: boolean;
  /** How a reply is known to have finished: `said` (conversations) or `mark` (echo). */
  replyEnd: 'said' | 'mark';
  /** Silence before the first turn (after the greeting), frames: desynchronises the calls. */
  leadFrames: number;
  /** A turn with no finished reply after this long is counted as missed and the next starts. */
  turnTimeoutMs: number;
  /** Longest wait for the greeting to play out before the first turn starts anyway. */
  greetingTimeoutMs: number;
  /** Stop after this many turns (0: until `stop()`). */
  maxTurns?: number;
}

type Phase = 'greeting' | 'speaking' | 'waiting' | 'pause' | 'done';

/**
 * One synthetic caller's turn-taking, driven by the runner: `next(now)` once per 20 ms slot
 * says what to send; `onAudio` and `onText` feed what the server sent back. Never looks at a
 * clock itself.
 */
export class Caller {
  readonly turns: TurnRecord[] = [];
  /** Server errors and unexpected stops seen on this call. */
  readonly errors: string[] = [];
  private phase: Phase;
  private framesLeft: number;
  private clip = 0;
  private frame = 0;
  private turn: TurnRecord | null = null;
  private phaseStartedAt = 0;
  private stopping = false;
  private intentIndex: number;
  /** Replies still owed to turns that timed out: the next ones to arrive are theirs. */
  private stale = 0;
  /** Filler lines announced (`agent.filler`) whose `agent.said` has not come yet. */
  private readonly fillerTexts: string[] = [];
  ended = false;

  constructor(private readonly opts: CallerOptions) {
    // Greeted calls wait for the greeting first; the lead silence comes after it either way, so
    // calls connected together still take their turns at different times.
    this.phase = opts.expectsGreeting ? 'greeting' : 'pause';
    this.framesLeft = opts.leadFrames;
    this.intentIndex = opts.firstIntent ?? 0;
  }

  /** No new turn starts after this; the one in flight finishes (or times out). */
  stop(): void {
    this.stopping = true;
    if (this.phase !== 'waiting' && this.phase !== 'speaking') this.phase = 'done';
  }

  /** Whether the caller has nothing more to do. */
  get done(): boolean {
    return this.phase === 'done' || this.ended;
  }

  /** Whether the first turn has started (the greeting, if any, is over). */
  get talking(): boolean {
    return this.turns.length > 0 || this.done;
  }

  /** What to send in the slot starting at `now`. */
  next(now: number): FrameChoice {
    switch (this.phase) {
      case 'greeting':
        if (this.phaseStartedAt === 0) this.phaseStartedAt = now;
        if (now - this.phaseStartedAt > this.opts.greetingTimeoutMs) {
          this.errors.push('no greeting');
          return this.startTurn(now);
        }
        return { kind: 'silence' };
      case 'speaking': {
        const choice: FrameChoice = { kind: 'speech', clip: this.clip, frame: this.frame++ };
        if (this.frame >= this.opts.clipFrames[this.clip]!) {
          // Frames leave as a microphone's would, each once its 20 ms are captured: the last
          // frame of the clip goes out at the end of speech.
          this.turn!.endOfSpeechAt = now;
          this.enter('waiting', now);
        }
        return choice;
      }
      case 'waiting':
        if (now - this.turn!.endOfSpeechAt > this.opts.turnTimeoutMs) this.finishTurn(now, false);
        return { kind: 'silence' };
      case 'pause':
        if (this.framesLeft-- > 0) return { kind: 'silence' };
        return this.startTurn(now);
      case 'done':
        return { kind: 'silence' };
    }
  }

  /** An agent audio frame arrived. */
  onAudio(now: number): void {
    if (
      this.phase === 'waiting' &&
      this.turn &&
      this.turn.firstAudioAt === null &&
      now >= this.turn.endOfSpeechAt
    ) {
      this.turn.firstAudioAt = now;
    }
  }

  /** A server text frame arrived. */
  onText(text: string, now: number): void {
    const m = parseServerText(text);
    if (m.kind === 'error') this.errors.push(`error ${m.code}: ${m.message}`);
    else if (m.kind === 'stop') {
      if (!this.stopping) this.errors.push(`server stopped the call: ${m.reason}`);
      this.ended = true;
    } else if (m.kind === 'event') {
      if (m.name === 'agent.error' || m.name === 'agent.unavailable') {
        this.errors.push(`${m.name}: ${JSON.stringify(m.data)}`);
      } else if (m.name === 'agent.filler') {
        this.fillerTexts.push(String(m.data.text ?? ''));
        if (this.phase === 'waiting' && this.turn) this.turn.fillers++;
      } else if (m.name === 'turn.latency') {
        // A late reply's latency belongs to the turn that timed out, not to this one.
        if (this.phase === 'waiting' && this.turn?.latency === null && this.stale === 0) {
          this.turn.latency = m.data as unknown as TurnLatency;
        }
      } else if (m.name === 'agent.said') {
        this.onSaid(String(m.data.text ?? ''), now);
      }
    } else if (m.kind === 'mark' && this.opts.replyEnd === 'mark') {
      if (this.stale > 0) this.stale--;
      else if (this.phase === 'waiting') this.finishTurn(now, true);
    }
  }

  /** What the agent said: the greeting, a filler line, a late reply, or this turn's reply. */
  private onSaid(text: string, now: number): void {
    const filler = this.fillerTexts.findIndex((f) => f.startsWith(text));
    if (filler >= 0) {
      this.fillerTexts.splice(filler, 1);
      return;
    }
    if (this.phase === 'greeting') {
      this.phase = 'pause';
      this.framesLeft = Math.ceil(PAUSE_AFTER_REPLY_MS / FRAME_MS) + this.opts.leadFrames;
      return;
    }
    if (this.opts.replyEnd !== 'said') return;
    if (this.stale > 0) {
      this.stale--;
      return;
    }
    if (this.phase === 'waiting') {
      this.turn!.saidText = text;
      this.finishTurn(now, true);
    }
  }

  private enter(phase: Phase, now: number): void {
    this.phase = phase;
    this.phaseStartedAt = now;
  }

  private startTurn(now: number): FrameChoice {
    if (this.stopping || (this.opts.maxTurns && this.turns.length >= this.opts.maxTurns)) {
      this.phase = 'done';
      return { kind: 'silence' };
    }
    this.clip = this.intentIndex % this.opts.intents.length;
    this.intentIndex++;
    this.frame = 0;
    this.turn = {
      index: this.turns.length + 1,
      intent: this.opts.intents[this.clip]!,
      endOfSpeechAt: Number.NaN,
      firstAudioAt: null,
      latency: null,
      saidText: null,
      completed: false,
      fillers: 0,
    };
    this.turns.push(this.turn);
    this.enter('speaking', now);
    return this.next(now);
  }

  private finishTurn(now: number, completed: boolean): void {
    this.turn!.completed = completed;
    if (!completed) this.stale++;
    if (this.stopping || (this.opts.maxTurns && this.turns.length >= this.opts.maxTurns)) {
      this.phase = 'done';
      return;
    }
    this.enter('pause', now);
    this.framesLeft = Math.ceil(PAUSE_AFTER_REPLY_MS / FRAME_MS);
  }
}

/** Whether a reply is right: its heard text contains the asked intent's reply (words only). */
export function replyMatches(turn: TurnRecord): boolean {
  if (turn.saidText === null) return false;
  const norm = (s: string) =>
    s
      .toLowerCase()
      .replace(/[^a-z0-9 ]+/g, ' ')
      .replace(/\s+/g, ' ')
      .trim();
  return norm(turn.saidText).includes(norm(turn.intent.expect));
}

/** The `q` quantile (0..1) of ascending `sorted`, nearest rank; NaN when empty. */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** p50 / p99 / max of a sample. */
export interface Spread {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export function spread(values: number[]): Spread {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  return {
    count: s.length,
    p50: quantile(s, 0.5),
    p99: quantile(s, 0.99),
    max: s.length > 0 ? s[s.length - 1]! : Number.NaN,
  };
}

/** What a run of turns adds up to. */
export interface TurnSummary {
  /** Turns whose speech ended inside the window. */
  turns: number;
  /** Of those, replies that finished before the turn timed out. */
  completed: number;
  /** Replies whose `agent.said` text contains the asked intent's reply (conversations only). */
  rightReplies: number;
  /** Turns on which the agent said a filler line first (its reply was slow). */
  withFiller: number;
  /**
   * End of caller speech → first agent audio heard, at the caller (includes endpointing; a
   * filler line, when one came first, is that audio).
   */
  endToEnd: Spread;
  /** The same minus the endpointing silence (`endpointingMs`, else `fallbackEndpointingMs`). */
  endToEndLessEndpointing: Spread;
  /** Server-side `turnMs - endpointingMs`: VAD end of turn → first agent audio frame sent. */
  overhead: Spread;
  /** Server-side `turnMs` (end of speech → first audio sent, endpointing included). */
  turnMs: Spread;
  sttMs: Spread;
  ttsFirstAudioMs: Spread;
}

/**
 * Summarises the turns whose speech ended in [`fromMs`, `toMs`). `fallbackEndpointingMs` is the
 * endpointing silence for agents that report no `turn.latency` (echo: the agent's `minMs`).
 */
export function summarise(
  turns: TurnRecord[],
  fromMs: number,
  toMs: number,
  fallbackEndpointingMs: number,
): TurnSummary {
  const inWindow = turns.filter((t) => t.endOfSpeechAt >= fromMs && t.endOfSpeechAt < toMs);
  const heard = inWindow.filter((t) => t.firstAudioAt !== null);
  const withLatency = inWindow.filter((t) => t.latency !== null).map((t) => t.latency!);
  return {
    turns: inWindow.length,
    completed: inWindow.filter((t) => t.completed).length,
    rightReplies: inWindow.filter(replyMatches).length,
    withFiller: inWindow.filter((t) => t.fillers > 0).length,
    endToEnd: spread(heard.map((t) => t.firstAudioAt! - t.endOfSpeechAt)),
    endToEndLessEndpointing: spread(
      heard.map(
        (t) => t.firstAudioAt! - t.endOfSpeechAt - (t.latency?.endpointingMs ?? fallbackEndpointingMs),
      ),
    ),
    overhead: spread(withLatency.map((l) => l.turnMs - l.endpointingMs)),
    turnMs: spread(withLatency.map((l) => l.turnMs)),
    sttMs: spread(withLatency.map((l) => l.sttMs)),
    ttsFirstAudioMs: spread(withLatency.map((l) => l.ttsFirstAudioMs ?? Number.NaN)),
  };
}
