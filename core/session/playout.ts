import { type FrameClock, Resampler, samplesPerFrame } from '../audio/index.ts';
import { encodeFromPcm16, pcm16AsBytes } from '../audio/pcm16.ts';
import type { AudioEncoding, AudioOutFrame, OutboundFrame } from '../wire/frames.ts';

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
  /** Most audio queued at once, ms; beyond it the oldest queued audio is dropped. */
  maxQueuedMs?: number;
  /** Monotonic time source in ms (default `performance.now`). */
  now?: () => number;
  /** Told after each frame is sent, with the total samples sent so far (speech tracking). */
  onAdvance?: (samplesSent: number) => void;
}

/** Initial ring size: one second. It doubles when more is queued, up to `maxQueuedMs`. */
const INITIAL_RING_MS = 1000;
/**
 * Ticks a drained playout stays subscribed for. Audio that streams in frame by frame (loopback,
 * streaming TTS) then just waits for the next tick instead of re-arming the shared clock each time.
 */
const IDLE_TICKS_BEFORE_UNSUBSCRIBE = 50;
const FRAME_MS = 20;
/** A clock tick sends only frames at least this late: inbound traffic gets to send them first. */
const TICK_LATE_MS = 4;
/** Frames sent back to back when playout fell behind; beyond it the schedule restarts from now. */
const MAX_CATCH_UP_FRAMES = 3;

/**
 * Outbound audio paced at real time: one 20 ms frame per clock tick (after a small lead), so
 * the provider never holds more than a few frames and a barge-in `clear` silences the caller
 * within one frame. Audio waits in a ring buffer (grown on demand, never per frame); marks are
 * positions in that stream. Converts to the wire's rate and encoding into reused buffers.
 */
export class Playout {
  private ring: Int16Array;
  /** Absolute sample positions: `read` ≤ `write`; the ring holds [read, write). */
  private read = 0;
  private write = 0;
  private readonly marks: { at: number; name: string }[] = [];
  private readonly framePipeline: Int16Array;
  private readonly resampler: Resampler;
  private encoded: Uint8Array;
  private readonly out: AudioOutFrame;
  private unsubscribe: (() => void) | null = null;
  private idleTicks = 0;
  /** When the next frame is due (performance.now() ms); frames go out on this 20 ms schedule. */
  private nextDueMs = 0;
  private readonly now: () => number;
  private readonly maxQueuedSamples: number;
  /** Marks sent and not yet reported back by the provider. */
  readonly pendingMarks = new Set<string>();
  framesSent = 0;
  /**
   * The read position in the stream of everything enqueued, in pipeline samples: samples sent,
   * plus those dropped by `clear` or overflow (monotonic, never re-based like ring positions).
   */
  samplesSent = 0;
  /** Pipeline samples ever queued (monotonic); a position in the stream of everything enqueued. */
  samplesEnqueued = 0;
  /** Samples dropped because more than `maxQueuedMs` was queued. */
  overflowSamples = 0;
  private readonly onTick = () => {
    if (this.playing) this.pump(this.now(), -TICK_LATE_MS);
    else if (++this.idleTicks >= IDLE_TICKS_BEFORE_UNSUBSCRIBE) this.stopTicking();
  };

  constructor(private readonly opts: PlayoutOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.framePipeline = new Int16Array(samplesPerFrame(opts.pipelineRate));
    this.resampler = new Resampler(opts.pipelineRate, opts.wireRate);
    // A Buffer (not a bare Uint8Array) so base64 serialisers can use it without wrapping it per frame.
    this.encoded = Buffer.allocUnsafeSlow(opts.encoding === 'pcm16' ? 0 : samplesPerFrame(opts.wireRate));
    this.out = { kind: 'audio_out', encoding: opts.encoding, sampleRate: opts.wireRate, data: this.encoded };
    this.maxQueuedSamples = Math.round(((opts.maxQueuedMs ?? 120_000) * opts.pipelineRate) / 1000);
    this.ring = new Int16Array(Math.min(this.maxQueuedSamples, (INITIAL_RING_MS * opts.pipelineRate) / 1000));
  }

  get playing(): boolean {
    return this.write > this.read || this.marks.length > 0;
  }

  /** Samples queued and not yet sent. */
  get queuedSamples(): number {
    return this.write - this.read;
  }

  /** Queues a copy of `pcm`; `mark` is sent right after its last frame. */
  enqueue(pcm: Int16Array, mark?: string): void {
    let src = pcm;
    if (src.length > this.maxQueuedSamples) {
      this.overflowSamples += src.length - this.maxQueuedSamples;
      src = src.subarray(src.length - this.maxQueuedSamples);
    }
    const needed = this.write - this.read + src.length;
    if (needed > this.ring.length) this.grow(needed);
    if (needed > this.ring.length) {
      // At the cap: drop the oldest queued audio to make room.
      const drop = needed - this.ring.length;
      this.read += drop;
      this.samplesSent += drop;
      this.overflowSamples += drop;
    }
    this.copyIn(src);
    this.samplesEnqueued += src.length;
    if (mark !== undefined) this.marks.push({ at: this.write, name: mark });
    this.idleTicks = 0;
    const now = this.now();
    if (this.unsubscribe === null) {
      this.unsubscribe = this.opts.clock.subscribe(this.onTick);
      const lead = this.opts.leadFrames ?? 2;
      // Lead frames only from whole frames: streamed audio arriving in small pieces must not be
      // padded with silence at its start (the tick sends the rest as it is due).
      for (let i = 0; i < lead && this.write - this.read >= this.framePipeline.length; i++) this.sendFrame();
      this.nextDueMs = now + FRAME_MS;
    } else if (this.nextDueMs < now - FRAME_MS) {
      // Audio resumes after a gap: start a fresh schedule rather than bursting the backlog.
      this.nextDueMs = now;
    }
  }

  /**
   * Sends the frames due by `now + earlyMs`. Called for every inbound frame (inside the socket's
   * message handler, where writes are batched: cheaper than a timer's) with a small positive
   * `earlyMs`, and by the shared clock with a negative one, as the fallback when no inbound
   * traffic came to send a frame in time.
   */
  pump(now: number, earlyMs: number): void {
    let sent = 0;
    while (this.playing && this.nextDueMs <= now + earlyMs) {
      if (sent === MAX_CATCH_UP_FRAMES) {
        this.nextDueMs = now + FRAME_MS;
        return;
      }
      this.sendFrame();
      this.nextDueMs += FRAME_MS;
      sent++;
    }
  }

  /**
   * Drops everything queued (barge-in). Returns whether anything was playing; the names of the
   * marks that were queued and never sent go to `dropped`, so every mark can be resolved.
   */
  clear(dropped?: string[]): boolean {
    const was = this.playing;
    // Unsent samples never reach the caller: count them as sent so positions stay comparable.
    this.samplesSent += this.write - this.read;
    this.read = this.write;
    if (dropped) for (const m of this.marks) dropped.push(m.name);
    this.marks.length = 0;
    this.resampler.reset();
    this.stopTicking();
    return was;
  }

  close(): void {
    this.clear();
  }

  private grow(needed: number): void {
    let size = this.ring.length;
    while (size < needed && size < this.maxQueuedSamples) size = Math.min(size * 2, this.maxQueuedSamples);
    if (size === this.ring.length) return;
    const next = new Int16Array(size);
    const queued = this.write - this.read;
    this.copyOut(next, queued);
    this.ring = next;
    // Re-base positions so the queued audio starts at 0 in the new ring.
    const shift = this.read;
    this.read = 0;
    this.write = queued;
    for (const m of this.marks) m.at -= shift;
  }

  private copyIn(src: Int16Array): void {
    const size = this.ring.length;
    const at = this.write % size;
    const first = Math.min(src.length, size - at);
    this.ring.set(first === src.length ? src : src.subarray(0, first), at);
    if (first < src.length) this.ring.set(src.subarray(first), 0);
    this.write += src.length;
  }

  /** Copies `count` samples from the read position into `dst` without consuming them. */
  private copyOut(dst: Int16Array, count: number): void {
    const size = this.ring.length;
    const at = this.read % size;
    const first = Math.min(count, size - at);
    dst.set(this.ring.subarray(at, at + first), 0);
    if (first < count) dst.set(this.ring.subarray(0, count - first), first);
  }

  private stopTicking(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  /** Sends the next pipeline frame (zero-padded at the very end), then any marks it reached. */
  private sendFrame(): void {
    const frame = this.framePipeline;
    const take = Math.min(frame.length, this.write - this.read);
    if (take > 0) {
      this.copyOut(frame, take);
      if (take < frame.length) frame.fill(0, take);
      this.read += take;
      this.samplesSent += take;
      this.emitAudio(frame);
    }
    while (this.marks.length > 0 && this.marks[0]!.at <= this.read) {
      const { name } = this.marks.shift()!;
      this.pendingMarks.add(name);
      this.opts.send({ kind: 'mark', name });
    }
    if (take > 0) this.opts.onAdvance?.(this.samplesSent);
  }

  private emitAudio(pipelineFrame: Int16Array): void {
    const wire = this.resampler.process(pipelineFrame);
    if (this.opts.encoding === 'pcm16') {
      this.out.data = pcm16AsBytes(wire);
    } else {
      if (this.encoded.length !== wire.length) this.encoded = Buffer.allocUnsafeSlow(wire.length);
      encodeFromPcm16(this.opts.encoding, wire, this.encoded);
      this.out.data = this.encoded;
    }
    this.framesSent++;
    this.opts.send(this.out);
  }
}
