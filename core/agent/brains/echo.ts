import type { Agent, AgentContext, UserTurn } from '../agent.ts';

export interface EchoAgentOptions {
  /** Audio kept from before speech was detected, so the first syllable is not lost. */
  preRollMs?: number;
  /** Longest turn echoed back; the rest is dropped. */
  maxTurnMs?: number;
}

/**
 * A diagnostic agent, like a telephony echo test: after each turn it plays the caller's own
 * audio back, with a mark per turn. Proves the whole media path (codec, resampling, VAD,
 * endpointing, paced playout, marks, barge-in) with no speech services at all.
 */
export class EchoAgent implements Agent {
  readonly kind = 'echo';
  private ctx!: AgentContext;
  private buffer = new Int16Array(0);
  private length = 0;
  private preRoll = new Int16Array(0);
  private preRollLength = 0;
  private preRollSamples = 0;
  private maxSamples = 0;
  private capturing = false;

  constructor(private readonly opts: EchoAgentOptions = {}) {}

  start(ctx: AgentContext): void {
    this.ctx = ctx;
    this.preRollSamples = Math.round(((this.opts.preRollMs ?? 300) * ctx.sampleRate) / 1000);
    this.maxSamples = Math.round(((this.opts.maxTurnMs ?? 10_000) * ctx.sampleRate) / 1000);
    this.preRoll = new Int16Array(this.preRollSamples);
    this.buffer = new Int16Array(this.maxSamples + this.preRollSamples);
    ctx.event('agent.ready', { brain: 'echo' });
  }

  onAudio(pcm: Int16Array, speaking: boolean): void {
    if (speaking || this.capturing) {
      const n = Math.min(pcm.length, this.buffer.length - this.length);
      this.buffer.set(n === pcm.length ? pcm : pcm.subarray(0, n), this.length);
      this.length += n;
      return;
    }
    // Keep the most recent pre-roll window (a sliding copy: cheap at 20 ms frames).
    const keep = Math.max(0, this.preRollSamples - pcm.length);
    if (this.preRollLength > keep) {
      this.preRoll.copyWithin(0, this.preRollLength - keep, this.preRollLength);
      this.preRollLength = keep;
    }
    const take = Math.min(pcm.length, this.preRollSamples);
    this.preRoll.set(pcm.subarray(pcm.length - take), this.preRollLength);
    this.preRollLength += take;
  }

  onSpeechStart(): void {
    if (this.capturing) return;
    this.capturing = true;
    // Speech was detected after `startMs` of voiced audio: that audio is in the pre-roll.
    this.buffer.set(this.preRoll.subarray(0, this.preRollLength), 0);
    this.length = this.preRollLength;
    this.preRollLength = 0;
  }

  onTurnEnd(turn: UserTurn): void {
    if (!this.capturing) return;
    this.capturing = false;
    // Leave out the endpointing silence, but keep a short natural tail.
    const trailing = Math.round((Math.max(0, turn.trailingSilenceMs - 100) * this.ctx.sampleRate) / 1000);
    this.length = Math.max(0, this.length - trailing);
    if (this.length > 0) this.ctx.play(this.buffer.subarray(0, this.length), { mark: `echo-${turn.index}` });
    this.length = 0;
  }
}
