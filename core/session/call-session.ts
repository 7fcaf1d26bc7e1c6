import type {
  Agent,
  AgentContext,
  CallInfo,
  SayOptions,
  SpeechHandle,
  SpeechSource,
} from '../agent/agent.ts';
import { type AgentRecord, DEFAULT_INTERRUPT_MIN_MS } from '../agent/config.ts';
import type { TextToSpeech } from '../agent/providers/types.ts';
import type { Vad } from '../agent/vad.ts';
import { type FrameClock, Pcm16Reader, Resampler } from '../audio/index.ts';
import { decodeToPcm16 } from '../audio/pcm16.ts';
import type { Logger } from '../observability/log.ts';
import type { Store } from '../store/store.ts';
import type {
  AudioEncoding,
  AudioInFrame,
  InboundFrame,
  OutboundFrame,
  StartFrame,
  WireProtocol,
} from '../wire/frames.ts';
import { Playout } from './playout.ts';
import { SpeechPlayer } from './speech.ts';
import { Timeline } from './timeline.ts';

/** The socket side of a session: sends frames through the codec, closes the socket. */
export interface SessionTransport {
  send(frame: OutboundFrame): void;
  /** Closes the socket; a no-op once it is closed. */
  close(code: number, reason: string): void;
}

/** Why a call ended, as the timeline and `call.ended` report it. */
export type EndReason =
  | 'stream_stopped'
  | 'socket_closed'
  | 'idle_timeout'
  | 'max_duration'
  | 'agent_hangup'
  | 'agent_unavailable'
  | 'provider_hangup'
  | 'transferred'
  | 'server_shutdown'
  | 'command'
  | 'error';

export interface CallSessionOptions {
  callId: string;
  agentId: string;
  protocol: WireProtocol;
  start: StartFrame;
  /** The provider's id of the call (Twilio CallSid, Jambonz call_sid, Telnyx call_control_id). */
  providerCallId?: string;
  /** Who is calling whom; defaults from the start frame. */
  call?: Partial<CallInfo>;
  /** Encoding and rate of outbound audio on this wire. */
  wireOut: { encoding: AudioEncoding; sampleRate: number };
  agent: Agent;
  agentConfig: AgentRecord;
  /** Caller speech detection, injected (Silero, or the energy detector). */
  vad: Vad;
  /** The agent's voice for `say(text)`; null for brains that never speak text. */
  tts?: TextToSpeech | null;
  /** Pipeline rate; default: the agent's `sampleRate`, else the wire's. */
  pipelineRate?: number;
  transport: SessionTransport;
  store: Store;
  log: Logger;
  clock: FrameClock;
  idleTimeoutMs: number;
  maxDurationMs: number;
  /** Wall-clock ms (default `Date.now`); tests drive it by hand. */
  now?: () => number;
  /** Monotonic ms for playout pacing (default `performance.now`). */
  monotonicNow?: () => number;
  /** Hands the caller over to `to` through the provider; absent where the protocol cannot. */
  transfer?: (to: string) => Promise<void>;
  /** Runs once when the session ends, whatever ended it (lease release, registry removal). */
  onEnded?: (session: CallSession, reason: EndReason) => void;
}

/** Recent-playout window in which a barge-in still sends `clear` (the provider may hold lead frames). */
const CLEAR_AFTER_PLAYOUT_MS = 500;
/** How early an inbound frame may send an outbound one that is due soon (ms). */
const INBOUND_PUMP_EARLY_MS = 10;
/** Silence between queued audio that still counts as the same utterance. */
const UTTERANCE_GAP_MS = 300;
/** Said when the agent fails mid-call, before the call ends. */
export const APOLOGY = "I'm sorry, something went wrong on our side. Please call again later. Goodbye.";
/** Timeline steps also sent to clients as `event` frames (telephony codecs drop them). */
const CLIENT_EVENTS = new Set([
  'agent.said',
  'turn.latency',
  'barge_in',
  'agent.error',
  'agent.unavailable',
  'agent.resumed',
  'agent.filler',
  'call.transferring',
  'call.ended',
]);
/** Longest an apology may take before the call is ended anyway. */
const APOLOGY_MAX_MS = 8000;

/**
 * One call: frames in from the codec, audio decoded and resampled to the pipeline rate, the
 * injected VAD, turns and barge-in to the agent, the agent's speech (speech handles) paced out
 * in 20 ms frames with marks, DTMF, timeouts, and one `close()` for every way a call ends.
 * Agent hooks may be async; whatever they throw ends the call with a spoken apology.
 */
export class CallSession {
  readonly callId: string;
  readonly agentId: string;
  readonly protocol: WireProtocol;
  readonly pipelineRate: number;
  readonly startedAt: number;
  readonly timeline: Timeline;
  readonly call: CallInfo;
  readonly providerCallId: string | undefined;
  framesIn = 0;
  private closed = false;
  private failing = false;
  private lastMediaAt: number;
  private lastPlayoutAt = 0;
  private turnIndex = 0;
  private bargedThisTurn = false;
  private readonly playout: Playout;
  readonly speech: SpeechPlayer;
  private readonly vad: Vad;
  private readonly pcmReader = new Pcm16Reader();
  private decodeBuffer = new Int16Array(1024);
  private decodedView = new Int16Array(0);
  private inResampler: Resampler | null = null;
  private inRate = 0;
  /** Marks sent to the provider or queued, not yet resolved: each resolves exactly once. */
  private readonly openMarks = new Set<string>();
  private readonly maxDurationMs: number;
  private readonly interruptMinMs: number;
  private readonly callAbort = new AbortController();
  private readonly now: () => number;
  readonly ctx: AgentContext;

  constructor(private readonly opts: CallSessionOptions) {
    this.now = opts.now ?? Date.now;
    this.startedAt = this.now();
    this.lastMediaAt = this.startedAt;
    this.callId = opts.callId;
    this.providerCallId = opts.providerCallId;
    this.agentId = opts.agentId;
    this.protocol = opts.protocol;
    const config = opts.agentConfig;
    this.pipelineRate = opts.pipelineRate ?? config.sampleRate ?? opts.start.sampleRate;
    this.maxDurationMs = Math.min(opts.maxDurationMs, (config.maxDurationSec ?? Infinity) * 1000);
    this.interruptMinMs = config.interruptMinMs ?? DEFAULT_INTERRUPT_MIN_MS;
    const startCall = opts.start.call;
    this.call = {
      callId: opts.callId,
      agentId: opts.agentId,
      accountId: config.accountId,
      direction: startCall.direction === 'outbound' ? 'outbound' : 'inbound',
      from: startCall.from,
      to: startCall.to,
      provider: opts.protocol,
      params: opts.start.params,
      variables: {},
      ...opts.call,
    };
    this.timeline = new Timeline(opts.store, opts.log, {
      callId: opts.callId,
      agentId: opts.agentId,
      protocol: opts.protocol,
    });
    this.vad = opts.vad;
    this.playout = new Playout({
      pipelineRate: this.pipelineRate,
      wireRate: opts.wireOut.sampleRate,
      encoding: opts.wireOut.encoding,
      clock: opts.clock,
      now: opts.monotonicNow,
      send: (frame) => {
        if (frame.kind === 'audio_out') this.lastPlayoutAt = this.now();
        opts.transport.send(frame);
      },
      onAdvance: (position) => this.speech.advance(position),
    });
    this.speech = new SpeechPlayer({
      playout: this.playout,
      pipelineRate: this.pipelineRate,
      tts: opts.tts ?? null,
      now: this.now,
      onText: (text, final) => opts.transport.send({ kind: 'agent_text', text, final }),
      onSaid: (h, r) => {
        const startMs = h.firstFrameAt === null ? null : h.firstFrameAt - this.startedAt;
        this.record('agent.said', {
          text: r.playedText,
          interrupted: r.interrupted,
          playedMs: r.playedMs,
          totalMs: r.totalMs,
          startMs,
          endMs: startMs === null ? null : startMs + r.playedMs,
        });
        if (r.playedText) opts.transport.send({ kind: 'agent_text', text: r.playedText, final: true });
      },
      onError: (_h, err) => this.fail('speech', err),
      clearOutput: () => this.clearOutput(),
    });
    this.ctx = this.makeContext();
  }

  private makeContext(): AgentContext {
    const session = this;
    const opts = this.opts;
    return {
      call: this.call,
      config: opts.agentConfig,
      callId: opts.callId,
      agentId: opts.agentId,
      sampleRate: this.pipelineRate,
      signal: this.callAbort.signal,
      say: (source: SpeechSource, o?: SayOptions): SpeechHandle =>
        this.speech.say(source, {
          ...o,
          allowInterruptions: o?.allowInterruptions ?? opts.agentConfig.bargeIn,
        }),
      get currentSpeech() {
        return session.speech.current;
      },
      play: (pcm, o) => this.play(pcm, o?.mark),
      get playing() {
        return session.playout.playing;
      },
      interrupt: (reason) => this.interrupt(reason),
      sendTranscript: (text, final, data) => {
        opts.transport.send({ kind: 'transcript', text, final });
        this.record(final ? 'transcript.final' : 'transcript.partial', { text, ...data });
      },
      sendText: (text, final) => opts.transport.send({ kind: 'agent_text', text, final }),
      event: (type, data) => this.record(type, data),
      hangup: (reason) => this.close('agent_hangup', { detail: reason }),
      fail: (where, err) => this.fail(where, err),
      transfer: async (to) => {
        if (!opts.transfer) throw new Error(`transfer is not possible on ${opts.protocol} streams`);
        this.record('call.transferring', { to });
        await opts.transfer(to);
        this.close('transferred', { detail: to });
      },
    };
  }

  /**
   * Appends a step to the timeline; the steps a client can act on (what the agent said, turn
   * latency, barge-in, errors, the end) also go to native clients as `event` frames.
   */
  record(type: string, data?: Record<string, unknown>): void {
    this.timeline.append(type, data);
    if (CLIENT_EVENTS.has(type)) this.opts.transport.send({ kind: 'event', name: type, data });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The call's abort signal: aborted when it ends. */
  get signal(): AbortSignal {
    return this.callAbort.signal;
  }

  /** Announces the call and hands it to the agent. */
  async begin(): Promise<void> {
    const { start } = this.opts;
    this.record('call.started', {
      protocol: this.protocol,
      encoding: start.encoding,
      sampleRate: start.sampleRate,
      pipelineRate: this.pipelineRate,
      brain: this.opts.agent.kind,
      direction: this.call.direction,
    });
    await this.guard('agent.start', () => this.opts.agent.start(this.ctx));
  }

  /**
   * Runs an agent hook: a throw or a rejected promise ends the call politely, never escapes.
   * Returns once the hook (and its promise) has settled.
   */
  guard(where: string, hook: () => unknown): Promise<void> {
    try {
      const r = hook();
      if (r && typeof (r as Promise<unknown>).then === 'function') {
        return (r as Promise<unknown>).then(
          () => {},
          (err: unknown) => this.fail(where, err),
        );
      }
    } catch (err) {
      this.fail(where, err);
    }
    return Promise.resolve();
  }

  /** One inbound frame from the codec. Never throws: an agent error ends the call cleanly. */
  handle(frame: InboundFrame): void {
    if (this.closed) return;
    const agent = this.opts.agent;
    switch (frame.kind) {
      case 'audio_in':
        this.onAudio(frame);
        return;
      case 'dtmf':
        this.record('dtmf', { digit: frame.digit });
        void this.guard('agent.onDtmf', () => agent.onDtmf?.(frame.digit));
        return;
      case 'mark': {
        if (!this.openMarks.delete(frame.name)) return;
        this.playout.pendingMarks.delete(frame.name);
        this.resolveMark(frame.name, frame.status ?? 'played');
        return;
      }
      case 'text':
        this.record('user.text', { text: frame.text });
        void this.guard('agent.onText', () => agent.onText?.(frame.text));
        return;
      case 'clear':
        this.interrupt('client_clear');
        return;
      case 'end':
        this.close('stream_stopped', { detail: frame.reason });
        return;
      case 'error':
        this.record('provider.error', { code: frame.code, message: frame.message });
        return;
      case 'start':
      case 'event':
        return;
    }
  }

  private resolveMark(name: string, status: 'played' | 'cleared'): void {
    this.record('mark', { name, status });
    void this.guard('agent.onMark', () => this.opts.agent.onMark?.(name, status));
  }

  private onAudio(frame: AudioInFrame): void {
    this.framesIn++;
    this.lastMediaAt = this.now();
    const pcm = this.resampleIn(this.decode(frame), frame.sampleRate);
    const event = this.vad.process(pcm);
    const agent = this.opts.agent;
    if (event === 'speech_start') {
      this.record('user.speech_started');
      void this.guard('agent.onSpeechStart', () => agent.onSpeechStart?.());
    }
    if (this.vad.speaking && !this.bargedThisTurn && this.mayInterrupt()) {
      if (this.vad.speechMs >= this.interruptMinMs) {
        this.bargedThisTurn = true;
        this.interrupt('barge_in');
      }
    }
    if (agent.onAudio) {
      try {
        agent.onAudio(pcm, this.vad.speaking || event === 'speech_end');
      } catch (err) {
        this.fail('agent.onAudio', err);
        return;
      }
    }
    // Outbound audio due about now rides along with this inbound frame (see Playout.pump), and
    // the node's clock learns whether its tick is long overdue (see FrameClock.poke).
    this.opts.clock.poke();
    if (this.playout.playing)
      this.playout.pump(this.opts.monotonicNow?.() ?? performance.now(), INBOUND_PUMP_EARLY_MS);
    if (event === 'speech_end') {
      this.bargedThisTurn = false;
      this.turnIndex++;
      const turn = {
        index: this.turnIndex,
        durationMs: Math.round(this.vad.speechMs),
        trailingSilenceMs: Math.round(this.vad.trailingSilenceMs),
      };
      this.record('turn.completed', {
        turn: turn.index,
        speechMs: turn.durationMs,
        endpointingMs: turn.trailingSilenceMs,
      });
      void this.guard('agent.onTurnEnd', () => agent.onTurnEnd?.(turn));
    }
  }

  /** Whether caller speech may cut off what the agent is saying now. */
  private mayInterrupt(): boolean {
    if (this.opts.agentConfig.bargeIn === false) return false;
    const current = this.speech.current;
    if (current) return current.allowInterruptions && current.startAt >= 0;
    return this.playout.playing || this.now() - this.lastPlayoutAt < CLEAR_AFTER_PLAYOUT_MS;
  }

  /** Wire bytes → PCM16 at the wire rate, into a reused buffer (a view for aligned L16). */
  private decode(frame: AudioInFrame): Int16Array {
    if (frame.encoding === 'pcm16') return this.pcmReader.read(frame.data);
    const n = frame.data.length;
    if (this.decodeBuffer.length < n) this.decodeBuffer = new Int16Array(n * 2);
    decodeToPcm16(frame.encoding, frame.data, this.decodeBuffer);
    if (this.decodedView.length !== n) this.decodedView = this.decodeBuffer.subarray(0, n);
    return this.decodedView;
  }

  private resampleIn(pcm: Int16Array, rate: number): Int16Array {
    if (rate === this.pipelineRate) return pcm;
    if (this.inRate !== rate || this.inResampler === null) {
      this.inResampler = new Resampler(rate, this.pipelineRate);
      this.inRate = rate;
    }
    return this.inResampler.process(pcm);
  }

  private play(pcm: Int16Array, mark: string | undefined): void {
    if (this.closed) return;
    // One timeline event per utterance: frames streaming in one by one (loopback, streaming TTS)
    // that leave the queue briefly empty between them are still one utterance.
    if (!this.playout.playing && this.now() - this.lastPlayoutAt > UTTERANCE_GAP_MS) {
      this.record('agent.speaking', {
        ms: Math.round((pcm.length * 1000) / this.pipelineRate),
        mark,
      });
    }
    if (mark !== undefined) this.openMarks.add(mark);
    this.playout.enqueue(pcm, mark);
  }

  /** Drops queued audio, resolves every open mark as cleared, clears the provider's buffer. */
  private clearOutput(): boolean {
    const dropped: string[] = [];
    const wasPlaying = this.playout.clear(dropped);
    this.playout.pendingMarks.clear();
    const open = [...this.openMarks];
    this.openMarks.clear();
    for (const name of open) this.resolveMark(name, 'cleared');
    this.opts.transport.send({ kind: 'clear' });
    this.lastPlayoutAt = 0;
    return wasPlaying;
  }

  /** Barge-in: cut every utterance, drop queued audio, clear the provider's buffer, now. */
  interrupt(reason: string): void {
    if (this.closed) return;
    const cut = this.speech.interruptAll();
    const wasPlaying = this.clearOutput();
    this.record('barge_in', {
      reason,
      wasPlaying,
      ...(cut?.result ? { playedMs: cut.result.playedMs, playedText: cut.result.playedText } : {}),
    });
    if (cut?.result) {
      const result = cut.result;
      void this.guard('agent.onInterrupted', () => this.opts.agent.onInterrupted?.(cut, result));
    }
  }

  /** A live `say` command from the API. */
  sayCommand(text: string): void {
    if (this.closed) return;
    const agent = this.opts.agent;
    void this.guard('command.say', () =>
      agent.onCommandSay ? agent.onCommandSay(text) : this.ctx.say(text, { allowInterruptions: true }).done,
    );
  }

  /** A live `transfer` command from the API. */
  transferCommand(to: string): void {
    if (this.closed) return;
    this.ctx.transfer(to).catch((err: unknown) => {
      this.record('call.transfer_failed', { to, error: (err as Error)?.message ?? String(err) });
      this.opts.log.warn({ callId: this.callId, err: (err as Error)?.message }, 'transfer failed');
    });
  }

  /** Ends the call on idle or max duration; the media server calls it about once a second. */
  checkTimers(now: number): void {
    if (this.closed) return;
    if (now - this.startedAt >= this.maxDurationMs) this.close('max_duration');
    else if (now - this.lastMediaAt >= this.opts.idleTimeoutMs) this.close('idle_timeout');
  }

  /**
   * An agent or provider failed: log it, put it on the timeline, apologise aloud (when there is
   * a voice and the call is still up) and end the call. Never throws.
   */
  fail(where: string, err: unknown): void {
    if (this.closed || this.failing) return;
    this.failing = true;
    const message = (err as Error)?.message ?? String(err);
    const retryable = (err as { retryable?: boolean })?.retryable ?? false;
    this.opts.log.error({ callId: this.callId, where, err: message }, 'call session error');
    this.record('agent.error', { where, message, retryable });
    if (!this.opts.tts) {
      this.close('error', { detail: where });
      return;
    }
    this.speech.interruptAll();
    this.clearOutput();
    const apology = this.speech.say(APOLOGY, { allowInterruptions: false });
    const timer = setTimeout(() => apology.cancel(), APOLOGY_MAX_MS);
    void apology.done.then(() => {
      clearTimeout(timer);
      this.close('error', { detail: where });
    });
  }

  /**
   * The one way a call ends. Idempotent: stops playout, lets the agent go, records
   * `call.ended`, tells the provider to disconnect where its protocol can, closes the socket
   * unless it is already gone, and runs `onEnded` exactly once.
   */
  close(reason: EndReason, opts: { detail?: string; socketClosed?: boolean } = {}): void {
    if (this.closed) return;
    this.closed = true;
    this.speech.close();
    this.playout.close();
    this.callAbort.abort();
    for (const name of [...this.openMarks]) this.record('mark', { name, status: 'cleared' });
    this.openMarks.clear();
    try {
      this.opts.agent.close?.(reason);
    } catch (err) {
      this.opts.log.warn({ callId: this.callId, err: (err as Error)?.message }, 'agent close failed');
    }
    this.vad.close?.();
    this.opts.tts?.close?.();
    this.record('call.ended', {
      reason,
      detail: opts.detail,
      durationMs: this.now() - this.startedAt,
      turns: this.turnIndex,
      framesIn: this.framesIn,
      framesOut: this.playout.framesSent,
    });
    if (!opts.socketClosed) {
      this.opts.transport.send({ kind: 'end', reason });
      this.opts.transport.close(reason === 'error' ? 1011 : 1000, reason);
    }
    this.opts.onEnded?.(this, reason);
  }
}
