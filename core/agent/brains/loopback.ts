import type { Agent, AgentContext } from '../agent.ts';

/**
 * A continuous echo, like a switch's echo test: every inbound frame is played straight back,
 * so audio flows both ways at full rate for as long as the caller streams. Measures the media
 * path under load (the throughput benchmark uses it) and lets a person hear their line's delay.
 */
export class LoopbackAgent implements Agent {
  readonly kind = 'loopback';
  private ctx!: AgentContext;

  start(ctx: AgentContext): void {
    this.ctx = ctx;
  }

  onAudio(pcm: Int16Array): void {
    this.ctx.play(pcm);
  }
}
