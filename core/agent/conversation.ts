import { dtmfTones } from '../audio/dtmf.ts';
import { Resampler } from '../audio/resampler.ts';
import type { Agent, AgentContext, SpeechHandle, SpeechResult, UserTurn } from './agent.ts';
import { AsyncQueue } from './async-queue.ts';
import type { Brain, BrainInput, BrainOutput } from './brains/brain.ts';
import { turnStageSeconds } from './metrics.ts';
import type { ChatMessage, SpeechToText, SttStream, Transcript } from './providers/types.ts';
import { LexicalTurnDetector, type TurnDetector } from './turn-detector.ts';

/** Timers the conversation uses; tests drive them by hand. */
export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: Timers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface ConversationOptions {
  brain: Brain;
  stt: SpeechToText;
  language?: string;
  sttModel?: string;
  sttOptions?: Record<string, string | number | boolean>;
  turnDetector?: TurnDetector;
  timers?: Timers;
  /** A filler line is said when a reply has not started speaking after this long. */
  fillerAfterMs?: number;
  fillers?: string[];
  /** After an interruption, an empty turn within this long resumes what was cut off. */
  falseInterruptionMs?: number;
  /** Outbound calls: greet after this much silence if the callee says nothing first. */
  outboundGreetAfterMs?: number;
  /**
   * Audio kept from before speech was detected, so the first syllable reaches the recogniser.
   * Default 600 ms: Silero decides on 32 ms windows and needs a run of speech first, so for the
   * same words its start moves by up to ~400 ms with how 20 ms frames fall against its windows;
   * 300 ms left phone callers' first word clipped (and the turn rejected) at some alignments.
   */
  preRollMs?: number;
  /** Names of the brain's model and voice, for the latency metrics' `provider` label. */
  providers?: { llm?: string; tts?: string };
}

/** Timings of one caller turn, for the latency record. */
interface TurnTiming {
  turn: number;
  endOfSpeechAt: number;
  endpointingMs: number;
  sttMs: number;
}

/**
 * A spoken conversation: the caller's turns go through the recogniser to the brain, whose
 * reply streams into speech sentence by sentence. Turn-taking lives here: endpointing from the
 * VAD's silence (extended up to `endpointing.maxMs` while the words look unfinished),
 * false-interruption resume, a filler line for slow replies, DTMF and typed text as turns, and
 * a history that keeps only the words the caller heard. Barge-in itself (after
 * `interruptMinMs`) is the session's; this side learns of it through `onInterrupted`.
 */
export class Conversation implements Agent {
  readonly kind: string;
  private ctx!: AgentContext;
  private stream: SttStream | null = null;
  private sttResampler: Resampler | null = null;
  private readonly timers: Timers;
  private readonly turnDetector: TurnDetector;
  readonly history: ChatMessage[] = [];
  private inTurn = false;
  /** The most recent idle audio, a ring written in place (no allocation per frame). */
  private preRoll = new Int16Array(0);
  private preRollAt = 0;
  private preRollFilled = 0;
  private turnAbort: AbortController | null = null;
  private interrupted: { handle: SpeechHandle; result: SpeechResult; at: number } | null = null;
  /** Words of a turn that looked unfinished, waiting for the caller to go on. */
  private held: { text: string; timer: unknown; timing: TurnTiming; input: BrainInput } | null = null;
  private greeted = false;
  private greetTimer: unknown = null;
  private startedAt = 0;
  private turns = 0;
  private closed = false;
  private finalizing: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: ConversationOptions) {
    this.kind = opts.brain.kind;
    this.timers = opts.timers ?? realTimers;
    this.turnDetector = opts.turnDetector ?? new LexicalTurnDetector();
  }

  async start(ctx: AgentContext): Promise<void> {
    this.ctx = ctx;
    this.startedAt = this.timers.now();
    this.preRoll = new Int16Array(Math.round(((this.opts.preRollMs ?? 600) * ctx.sampleRate) / 1000));
    const stt = this.opts.stt;
    const sttRate = stt.sampleRates.includes(ctx.sampleRate) ? ctx.sampleRate : stt.sampleRates[0]!;
    if (sttRate !== ctx.sampleRate) this.sttResampler = new Resampler(ctx.sampleRate, sttRate);
    this.stream = await stt.open({
      sampleRate: sttRate,
      language: this.opts.language ?? ctx.config.language,
      phrases: this.opts.brain.phrases(),
      model: this.opts.sttModel,
      options: this.opts.sttOptions,
    });
    // Streaming recognisers' interim results reach native clients (and the timeline) as they come.
    this.stream.onTranscript = (t) => {
      if (!t.final && t.text && this.inTurn) ctx.sendTranscript(t.text, false);
    };
    ctx.event('agent.ready', { brain: this.kind, stt: stt.name });
    if (ctx.call.direction === 'outbound') {
      // Let the callee answer first ("Hello?"); greet after their turn or a short silence.
      this.greetTimer = this.timers.setTimeout(() => {
        this.greetTimer = null;
        if (!this.inTurn) void this.guard(this.greet());
      }, this.opts.outboundGreetAfterMs ?? 1500);
      return;
    }
    await this.greet();
  }

  private async greet(): Promise<void> {
    if (this.greeted || this.closed) return;
    this.greeted = true;
    const text = this.opts.brain.greeting(this.ctx.call);
    if (!text) return;
    const handle = this.ctx.say(text);
    const result = await handle.done;
    if (result.playedText) this.history.push({ role: 'assistant', content: result.playedText });
  }

  onAudio(pcm: Int16Array, speaking: boolean): void {
    if (this.inTurn && speaking) {
      this.push(pcm);
      return;
    }
    // Keep the most recent pre-roll window.
    const ring = this.preRoll;
    if (ring.length === 0) return;
    const src = pcm.length > ring.length ? pcm.subarray(pcm.length - ring.length) : pcm;
    const first = Math.min(src.length, ring.length - this.preRollAt);
    ring.set(first === src.length ? src : src.subarray(0, first), this.preRollAt);
    if (first < src.length) ring.set(src.subarray(first), 0);
    this.preRollAt = (this.preRollAt + src.length) % ring.length;
    this.preRollFilled = Math.min(ring.length, this.preRollFilled + src.length);
  }

  private push(pcm: Int16Array): void {
    if (!this.stream) return;
    this.stream.push(this.sttResampler ? this.sttResampler.process(pcm) : pcm);
  }

  onSpeechStart(): void {
    this.inTurn = true;
    if (this.greetTimer !== null) {
      this.timers.clearTimeout(this.greetTimer);
      this.greetTimer = null;
    }
    if (this.held) this.timers.clearTimeout(this.held.timer);
    // Oldest first: the part after the write position (once the ring has wrapped), then before it.
    const ring = this.preRoll;
    if (this.preRollFilled === ring.length && ring.length > 0) {
      this.push(ring.subarray(this.preRollAt));
      if (this.preRollAt > 0) this.push(ring.subarray(0, this.preRollAt));
    } else if (this.preRollFilled > 0) {
      this.push(ring.subarray(0, this.preRollFilled));
    }
    this.preRollAt = 0;
    this.preRollFilled = 0;
  }

  onInterrupted(handle: SpeechHandle, result: SpeechResult): void {
    this.interrupted = { handle, result, at: this.timers.now() };
    this.turnAbort?.abort();
  }

  async onTurnEnd(turn: UserTurn): Promise<void> {
    this.inTurn = false;
    const stream = this.stream;
    if (!stream || this.closed) return;
    const now = this.timers.now();
    const timing: TurnTiming = {
      turn: turn.index,
      endOfSpeechAt: now - turn.trailingSilenceMs,
      endpointingMs: turn.trailingSilenceMs,
      sttMs: 0,
    };
    const transcript = await this.finalize(stream);
    timing.sttMs = this.timers.now() - now;
    if (this.closed) return;
    if (!this.greeted) {
      // Outbound: the callee's first words were their "hello"; now greet them.
      await this.greet();
      return;
    }
    const text = transcript.text.trim();
    if (text.length === 0 && !transcript.rejected) {
      this.onEmptyTurn();
      return;
    }
    this.sendTranscript(transcript, turn, timing);
    const held = this.held;
    this.held = null;
    const combined = held ? `${held.text} ${text}`.trim() : text;
    const input: BrainInput = {
      kind: 'speech',
      text: combined,
      rejected: transcript.rejected && !held,
      confidence: transcript.confidence,
    };
    const { minMs, maxMs } = this.ctx.config.endpointing;
    if (!transcript.rejected && maxMs > minMs && !this.turnDetector.isComplete(combined)) {
      const timer = this.timers.setTimeout(() => {
        const h = this.held;
        this.held = null;
        if (h) void this.guard(this.respond(h.input, h.timing));
      }, maxMs - minMs);
      this.held = { text: combined, timer, timing, input };
      return;
    }
    this.interrupted = null;
    await this.respond(input, timing);
  }

  /**
   * One finalize at a time: turn ends that bunch up (a loaded event loop, a slow recogniser) wait
   * for the one before, in order, rather than overlapping on the same stream.
   */
  private finalize(stream: SttStream): Promise<Transcript> {
    const next = this.finalizing.then(() => stream.finalize(this.ctx.signal));
    this.finalizing = next.catch(() => {});
    return next;
  }

  /** The caller made a sound but said nothing: resume what an interruption cut off. */
  private onEmptyTurn(): void {
    const cut = this.interrupted;
    this.interrupted = null;
    if (!cut) return;
    if (this.timers.now() - cut.at > (this.opts.falseInterruptionMs ?? 3000)) return;
    const resumed = cut.handle.resume();
    if (!resumed) return;
    this.ctx.event('agent.resumed', { playedMs: cut.result.playedMs });
    void this.guard(this.follow(resumed, null));
  }

  private sendTranscript(t: Transcript, turn: UserTurn, timing: TurnTiming): void {
    const endMs = timing.endOfSpeechAt - this.startedAt;
    this.ctx.sendTranscript(t.text, true, {
      turn: turn.index,
      startMs: Math.max(0, endMs - turn.durationMs),
      endMs,
      ...(t.confidence !== undefined ? { confidence: Math.round(t.confidence * 1000) / 1000 } : {}),
      ...(t.rejected ? { rejected: true } : {}),
    });
  }

  async onDtmf(digit: string): Promise<void> {
    await this.respond({ kind: 'dtmf', text: digit }, null);
  }

  async onText(text: string): Promise<void> {
    await this.respond({ kind: 'text', text }, null);
  }

  async onCommandSay(text: string): Promise<void> {
    await this.follow(this.ctx.say(text, { allowInterruptions: true }), null);
  }

  /** Runs one reply: the brain's words streamed into speech, then its action. */
  private async respond(input: BrainInput, timing: TurnTiming | null): Promise<void> {
    if (this.closed) return;
    this.turnAbort?.abort();
    const abort = new AbortController();
    this.turnAbort = abort;
    const signal = AbortSignal.any([abort.signal, this.ctx.signal]);
    this.turns++;
    this.history.push({
      role: 'user',
      content: input.kind === 'dtmf' ? `[pressed ${input.text}]` : input.text,
    });
    const brainStartedAt = this.timers.now();
    let firstTextAt: number | null = null;
    let handle: SpeechHandle | null = null;
    const actions: Exclude<BrainOutput, { kind: 'text' }>[] = [];
    const words = new AsyncQueue<string>(signal);
    const fillerAfterMs = this.opts.fillerAfterMs ?? 2000;
    let filler: unknown = this.timers.setTimeout(() => {
      filler = null;
      if (handle || signal.aborted) return;
      const line = this.opts.fillers?.[this.turns % (this.opts.fillers.length || 1)] ?? 'One moment, please.';
      this.ctx.event('agent.filler', { text: line });
      this.ctx.say(line, { allowInterruptions: true });
    }, fillerAfterMs);
    try {
      const turn = { call: this.ctx.call, history: this.history, signal, event: this.ctx.event };
      for await (const out of this.opts.brain.reply(input, turn)) {
        if (signal.aborted) break;
        if (out.kind === 'text') {
          if (!out.text) continue;
          if (handle === null) {
            firstTextAt = this.timers.now();
            handle = this.ctx.say(words);
          }
          words.push(out.text);
        } else {
          actions.push(out);
        }
      }
    } finally {
      words.end();
      if (filler !== null) this.timers.clearTimeout(filler);
    }
    if (handle) {
      await this.follow(handle, timing && { ...timing, brainStartedAt, firstTextAt: firstTextAt! });
      const result = await handle.done;
      if (result.interrupted) return;
    }
    for (const action of actions) {
      if (signal.aborted || this.closed) return;
      await this.act(action);
    }
  }

  /** Carries out one of the brain's actions, once its words have been spoken. */
  private async act(action: Exclude<BrainOutput, { kind: 'text' }>): Promise<void> {
    if (action.kind === 'dtmf') {
      this.ctx.event('agent.dtmf', { digits: action.digits });
      const chunk = { pcm: dtmfTones(action.digits, this.ctx.sampleRate), sampleRate: this.ctx.sampleRate };
      const tones = (async function* () {
        yield chunk;
      })();
      await this.ctx.say(tones, { allowInterruptions: false, record: false }).done;
      return;
    }
    if (action.kind === 'hangup') {
      this.ctx.hangup(action.reason);
      return;
    }
    try {
      await this.ctx.transfer(action.to);
    } catch (err) {
      this.ctx.event('call.transfer_failed', { to: action.to, error: (err as Error).message });
      await this.follow(
        this.ctx.say("I'm sorry, I can't transfer you from here. Is there anything else I can help with?"),
        null,
      );
    }
  }

  /** Waits for an utterance; records what was heard and, for a reply, the turn's latency. */
  private async follow(
    handle: SpeechHandle,
    timing: (TurnTiming & { brainStartedAt: number; firstTextAt: number }) | null,
  ): Promise<void> {
    if (timing) {
      void handle.started.then((at) => {
        if (at === null) return;
        const latency = {
          endpointingMs: timing.endpointingMs,
          sttMs: timing.sttMs,
          llmFirstTokenMs: timing.firstTextAt - timing.brainStartedAt,
          ttsFirstAudioMs: handle.firstAudioAt === null ? null : handle.firstAudioAt - timing.firstTextAt,
          turnMs: at - timing.endOfSpeechAt,
        };
        this.ctx.event('turn.latency', { turn: timing.turn, ...latency });
        this.observe(latency);
      });
    }
    const result = await handle.done;
    if (result.playedText) this.history.push({ role: 'assistant', content: result.playedText });
  }

  private observe(l: {
    endpointingMs: number;
    sttMs: number;
    llmFirstTokenMs: number;
    ttsFirstAudioMs: number | null;
    turnMs: number;
  }): void {
    const p = this.opts.providers ?? {};
    turnStageSeconds.observe({ stage: 'endpointing', provider: 'vad' }, l.endpointingMs / 1000);
    turnStageSeconds.observe({ stage: 'stt', provider: this.opts.stt.name }, l.sttMs / 1000);
    turnStageSeconds.observe({ stage: 'llm', provider: p.llm ?? this.kind }, l.llmFirstTokenMs / 1000);
    if (l.ttsFirstAudioMs !== null)
      turnStageSeconds.observe({ stage: 'tts', provider: p.tts ?? 'voice' }, l.ttsFirstAudioMs / 1000);
    turnStageSeconds.observe({ stage: 'turn', provider: this.kind }, l.turnMs / 1000);
  }

  private async guard(p: Promise<void>): Promise<void> {
    // Timer-started work has no hook to return to: hand its failure to the session's apology.
    try {
      await p;
    } catch (err) {
      if (!this.closed) this.ctx.fail('conversation', err);
    }
  }

  close(): void {
    this.closed = true;
    this.turnAbort?.abort();
    if (this.greetTimer !== null) this.timers.clearTimeout(this.greetTimer);
    if (this.held) this.timers.clearTimeout(this.held.timer);
    this.stream?.close();
  }
}
