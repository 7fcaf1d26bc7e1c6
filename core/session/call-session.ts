import type { Agent, AgentConfig, AgentContext } from '../agent/agent.ts';
import { EnergyVad } from '../agent/vad.ts';
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
  | 'provider_hangup'
  | 'server_shutdown'
  | 'command'
  | 'error';

export interface CallSessionOptions {
  callId: string;
  agentId: string;
  protocol: WireProtocol;
  start: StartFrame;
  /** Encoding and rate of outbound audio on this wire. */
  wireOut: { encoding: AudioEncoding; sampleRate: number };
  agent: Agent;
  agentConfig: AgentConfig;
  transport: SessionTransport;
  store: Store;
  log: Logger;
  clock: FrameClock;
  idleTimeoutMs: number;
  maxDurationMs: number;
  /** Runs once when the session ends, whatever ended it (lease release, registry removal). */
  onEnded?: (session: CallSession, reason: EndReason) => void;
}

/** Recent-playout window in which a barge-in still sends `clear` (the provider may hold lead frames). */
const CLEAR_AFTER_PLAYOUT_MS = 500;
/** How early an inbound frame may send an outbound one that is due soon (ms). */
const INBOUND_PUMP_EARLY_MS = 10;
/** Silence between queued audio that still counts as the same utterance. */
const UTTERANCE_GAP_MS = 300;

/**
 * One call: frames in from the codec, audio decoded and resampled to the pipeline rate, VAD
 * and endpointing, turns to the agent, the agent's audio paced out in 20 ms frames with
 * marks, barge-in, DTMF, timeouts, and one `close()` for every way a call ends. Every step
 * lands on the call's timeline.
 */
export class CallSession {
  readonly callId: string;
  readonly agentId: string;
  readonly protocol: WireProtocol;
  readonly pipelineRate: number;
  readonly startedAt = Date.now();
  readonly timeline: Timeline;
  framesIn = 0;
  private closed = false;
  private lastMediaAt = Date.now();
  private lastPlayoutAt = 0;
  private turnIndex = 0;
  private readonly playout: Playout;
  private readonly vad: EnergyVad;
  private readonly pcmReader = new Pcm16Reader();
  private decodeBuffer = new Int16Array(1024);
  private decodedView = new Int16Array(0);
  private inResampler: Resampler | null = null;
  private inRate = 0;
  private readonly clearedMarks = new Set<string>();
  private readonly maxDurationMs: number;
  private readonly ctx: AgentContext;

  constructor(private readonly opts: CallSessionOptions) {
    this.callId = opts.callId;
    this.agentId = opts.agentId;
    this.protocol = opts.protocol;
    this.pipelineRate = opts.agentConfig.sampleRate ?? opts.start.sampleRate;
    this.maxDurationMs = Math.min(opts.maxDurationMs, (opts.agentConfig.maxDurationSec ?? Infinity) * 1000);
    this.timeline = new Timeline(opts.store, opts.log, {
      callId: opts.callId,
      agentId: opts.agentId,
      protocol: opts.protocol,
    });
    this.vad = new EnergyVad({
      sampleRate: this.pipelineRate,
      stopMs: opts.agentConfig.endpointingMs ?? 500,
    });
    this.playout = new Playout({
      pipelineRate: this.pipelineRate,
      wireRate: opts.wireOut.sampleRate,
      encoding: opts.wireOut.encoding,
      clock: opts.clock,
      send: (frame) => {
        if (frame.kind === 'audio_out') this.lastPlayoutAt = Date.now();
        opts.transport.send(frame);
      },
    });
    const session = this;
    this.ctx = {
      callId: opts.callId,
      agentId: opts.agentId,
      sampleRate: this.pipelineRate,
      play: (pcm, o) => this.play(pcm, o?.mark),
      get playing() {
        return session.playout.playing;
      },
      interrupt: (reason) => this.interrupt(reason),
      sendText: (text, final) => opts.transport.send({ kind: 'agent_text', text, final }),
      event: (type, data) => this.timeline.append(type, data),
      hangup: (reason) => this.close('agent_hangup', { detail: reason }),
    };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Announces the call and hands it to the agent. */
  async begin(): Promise<void> {
    const { start } = this.opts;
    this.timeline.append('call.started', {
      protocol: this.protocol,
      encoding: start.encoding,
      sampleRate: start.sampleRate,
      pipelineRate: this.pipelineRate,
      brain: this.opts.agent.kind,
      direction: start.call.direction,
    });
    try {
      await this.opts.agent.start(this.ctx);
    } catch (err) {
      this.fail('agent.start', err);
    }
  }

  /** One inbound frame from the codec. Never throws: an agent error ends the call cleanly. */
  handle(frame: InboundFrame): void {
    if (this.closed) return;
    try {
      switch (frame.kind) {
        case 'audio_in':
          this.onAudio(frame);
          return;
        case 'dtmf':
          this.timeline.append('dtmf', { digit: frame.digit });
          this.opts.agent.onDtmf?.(frame.digit);
          return;
        case 'mark': {
          const status = this.clearedMarks.delete(frame.name) ? 'cleared' : (frame.status ?? 'played');
          this.playout.pendingMarks.delete(frame.name);
          this.timeline.append('mark', { name: frame.name, status });
          this.opts.agent.onMark?.(frame.name, status);
          return;
        }
        case 'text':
          this.timeline.append('user.text', { length: frame.text.length });
          this.opts.agent.onText?.(frame.text);
          return;
        case 'clear':
          this.interrupt('client_clear');
          return;
        case 'end':
          this.close('stream_stopped', { detail: frame.reason });
          return;
        case 'error':
          this.timeline.append('provider.error', { code: frame.code, message: frame.message });
          return;
        case 'start':
        case 'event':
          return;
      }
    } catch (err) {
      this.fail(frame.kind, err);
    }
  }

  private onAudio(frame: AudioInFrame): void {
    this.framesIn++;
    this.lastMediaAt = Date.now();
    const pcm = this.resampleIn(this.decode(frame), frame.sampleRate);
    const event = this.vad.process(pcm);
    const agent = this.opts.agent;
    if (event === 'speech_start') {
      this.timeline.append('user.speech_started');
      if (this.opts.agentConfig.bargeIn !== false && this.recentlyPlaying()) this.interrupt('barge_in');
      agent.onSpeechStart?.();
    }
    agent.onAudio?.(pcm, this.vad.speaking || event === 'speech_end');
    // Outbound audio due about now rides along with this inbound frame (see Playout.pump).
    if (this.playout.playing) this.playout.pump(performance.now(), INBOUND_PUMP_EARLY_MS);
    if (event === 'speech_end') {
      this.turnIndex++;
      const turn = {
        index: this.turnIndex,
        durationMs: Math.round(this.vad.speechMs),
        trailingSilenceMs: Math.round(this.vad.trailingSilenceMs),
      };
      this.timeline.append('turn.completed', {
        turn: turn.index,
        speechMs: turn.durationMs,
        endpointingMs: turn.trailingSilenceMs,
      });
      agent.onTurnEnd?.(turn);
    }
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

  private recentlyPlaying(): boolean {
    return this.playout.playing || Date.now() - this.lastPlayoutAt < CLEAR_AFTER_PLAYOUT_MS;
  }

  private play(pcm: Int16Array, mark: string | undefined): void {
    if (this.closed) return;
    // One timeline event per utterance: frames streaming in one by one (loopback, streaming TTS)
    // that leave the queue briefly empty between them are still one utterance.
    if (!this.playout.playing && Date.now() - this.lastPlayoutAt > UTTERANCE_GAP_MS) {
      this.timeline.append('agent.speaking', {
        ms: Math.round((pcm.length * 1000) / this.pipelineRate),
        mark,
      });
    }
    this.playout.enqueue(pcm, mark);
  }

  /** Barge-in: drop queued audio and tell the provider to drop what it buffered, now. */
  interrupt(reason: string): void {
    if (this.closed) return;
    const wasPlaying = this.playout.clear();
    for (const name of this.playout.pendingMarks) this.clearedMarks.add(name);
    this.playout.pendingMarks.clear();
    this.opts.transport.send({ kind: 'clear' });
    this.lastPlayoutAt = 0;
    this.timeline.append('barge_in', { reason, wasPlaying });
  }

  /** Ends the call on idle or max duration; the media server calls it about once a second. */
  checkTimers(now: number): void {
    if (this.closed) return;
    if (now - this.startedAt >= this.maxDurationMs) this.close('max_duration');
    else if (now - this.lastMediaAt >= this.opts.idleTimeoutMs) this.close('idle_timeout');
  }

  private fail(where: string, err: unknown): void {
    this.opts.log.error({ callId: this.callId, where, err: (err as Error)?.message }, 'call session error');
    this.close('error', { detail: where });
  }

  /**
   * The one way a call ends. Idempotent: stops playout, lets the agent go, records
   * `call.ended`, tells the provider to disconnect where its protocol can, closes the socket
   * unless it is already gone, and runs `onEnded` exactly once.
   */
  close(reason: EndReason, opts: { detail?: string; socketClosed?: boolean } = {}): void {
    if (this.closed) return;
    this.closed = true;
    this.playout.close();
    try {
      this.opts.agent.close?.(reason);
    } catch (err) {
      this.opts.log.warn({ callId: this.callId, err: (err as Error)?.message }, 'agent close failed');
    }
    this.timeline.append('call.ended', {
      reason,
      detail: opts.detail,
      durationMs: Date.now() - this.startedAt,
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
