import { type FrameClock, Resampler, samplesPerFrame } from '../audio/index.ts';
import { encodeFromPcm16, pcm16AsBytes } from '../audio/pcm16.ts';
import type { AudioEncoding, AudioOutFrame, OutboundFrame } from '../wire/frames.ts';

interface Segment {
  pcm: Int16Array;
  offset: number;
  mark: string | undefined;
}

export interface PlayoutOptions {
  /** Rate of the PCM handed to `enqueue`. */
  pipelineRate: number;
  /** Rate and encoding the wire expects. */
  wireRate: number;
  encoding: AudioEncoding;
  clock: FrameClock;
  /** Sends one frame to the transport. */
  send(frame: OutboundFrame): void;
  /** Frames sent ahead of real time when playout starts, to absorb network jitter. */
  leadFrames?: number;
  /** Most audio queued at once, ms; beyond it `enqueue` drops the oldest (a runaway brain). */
  maxQueuedMs?: number;
}

/**
 * Outbound audio paced at real time: one 20 ms frame per clock tick (after a small lead), so
 * the provider never holds more than a few frames and a barge-in `clear` silences the caller
 * within one frame. Converts pipeline PCM to the wire's rate and encoding into reused buffers.
 */
export class Playout {
  private readonly queue: Segment[] = [];
  private readonly framePipeline: Int16Array;
  private readonly resampler: Resampler;
  private encoded: Uint8Array;
  private readonly out: AudioOutFrame;
  private unsubscribe: (() => void) | null = null;
  private queuedSamples = 0;
  private readonly maxQueuedSamples: number;
  /** Marks sent and not yet reported back by the provider. */
  readonly pendingMarks = new Set<string>();
  framesSent = 0;
  private readonly onTick = () => this.sendFrame();

  constructor(private readonly opts: PlayoutOptions) {
    this.framePipeline = new Int16Array(samplesPerFrame(opts.pipelineRate));
    this.resampler = new Resampler(opts.pipelineRate, opts.wireRate);
    const wireSamples = samplesPerFrame(opts.wireRate);
    this.encoded = new Uint8Array(opts.encoding === 'pcm16' ? 0 : wireSamples);
    this.out = { kind: 'audio_out', encoding: opts.encoding, sampleRate: opts.wireRate, data: this.encoded };
    this.maxQueuedSamples = Math.round(((opts.maxQueuedMs ?? 120_000) * opts.pipelineRate) / 1000);
  }

  get playing(): boolean {
    return this.queue.length > 0;
  }

  /** Queues a copy of `pcm`; `mark` is sent right after its last frame. */
  enqueue(pcm: Int16Array, mark?: string): void {
    if (pcm.length === 0 && mark === undefined) return;
    this.queue.push({ pcm: pcm.slice(), offset: 0, mark });
    this.queuedSamples += pcm.length;
    while (this.queuedSamples > this.maxQueuedSamples && this.queue.length > 1) {
      const dropped = this.queue.shift()!;
      this.queuedSamples -= dropped.pcm.length - dropped.offset;
    }
    if (this.unsubscribe === null) {
      this.unsubscribe = this.opts.clock.subscribe(this.onTick);
      const lead = this.opts.leadFrames ?? 2;
      for (let i = 0; i < lead && this.queue.length > 0; i++) this.sendFrame();
    }
  }

  /** Drops everything queued (barge-in). Returns whether anything was playing. */
  clear(): boolean {
    const was = this.queue.length > 0;
    this.queue.length = 0;
    this.queuedSamples = 0;
    this.resampler.reset();
    this.stopTicking();
    return was;
  }

  close(): void {
    this.clear();
  }

  private stopTicking(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  /** Assembles one pipeline frame from the queue (zero-padded at the very end) and sends it. */
  private sendFrame(): void {
    const frame = this.framePipeline;
    let filled = 0;
    const marks: string[] = [];
    while (filled < frame.length && this.queue.length > 0) {
      const seg = this.queue[0]!;
      const take = Math.min(frame.length - filled, seg.pcm.length - seg.offset);
      frame.set(seg.pcm.subarray(seg.offset, seg.offset + take), filled);
      seg.offset += take;
      filled += take;
      this.queuedSamples -= take;
      if (seg.offset >= seg.pcm.length) {
        this.queue.shift();
        if (seg.mark !== undefined) marks.push(seg.mark);
      }
    }
    if (filled > 0) {
      if (filled < frame.length) frame.fill(0, filled);
      this.emitAudio(frame);
    }
    for (const name of marks) {
      this.pendingMarks.add(name);
      this.opts.send({ kind: 'mark', name });
    }
    if (this.queue.length === 0) this.stopTicking();
  }

  private emitAudio(pipelineFrame: Int16Array): void {
    const wire = this.resampler.process(pipelineFrame);
    if (this.opts.encoding === 'pcm16') {
      this.out.data = pcm16AsBytes(wire);
    } else {
      if (this.encoded.length !== wire.length) this.encoded = new Uint8Array(wire.length);
      encodeFromPcm16(this.opts.encoding, wire, this.encoded);
      this.out.data = this.encoded;
    }
    this.framesSent++;
    this.opts.send(this.out);
  }
}
