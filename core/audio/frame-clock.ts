/**
 * Real-time pacing for outbound audio. Providers play what we send as fast as it arrives and
 * buffer the rest, so a session that dumps a whole TTS utterance cannot stop it on barge-in
 * within one frame; instead it sends one 20 ms frame per tick. One shared clock drives every
 * session on the node (one timer, not one per call).
 */
import type { AudioEncoding } from '../wire/frames.ts';

/** Called once per frame: `frameIndex` counts from the clock's start, `deadlineMs` is its due time. */
export type FrameListener = (frameIndex: number, deadlineMs: number) => void;

/** A one-shot timer: injectable so tests drive the clock's time instead of waiting on it. */
export interface FrameTimers {
  setTimeout(fire: () => void, delayMs: number): unknown;
  clearTimeout(handle: unknown): void;
}

const globalTimers: FrameTimers = {
  setTimeout: (fire, delayMs) => setTimeout(fire, delayMs),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Options for a FrameClock; the defaults suit telephony (20 ms frames). */
export interface FrameClockOptions {
  frameMs?: number;
  /**
   * Most frames delivered back to back when the event loop ran late; beyond that the clock skips
   * the rest (counted in `skippedFrames`) and resumes on its grid, rather than bursting audio.
   */
  maxCatchUpFrames?: number;
  /** Monotonic time source in ms (default `performance.now`). */
  now?: () => number;
  /** The one-shot timer the clock arms per tick (default the global setTimeout/clearTimeout). */
  timers?: FrameTimers;
  /** A throwing listener never stops the clock or the other sessions; its error lands here. */
  onError?: (error: unknown) => void;
  /** How late past its due time an armed tick is taken for lost by {@link FrameClock.poke} (default 200 ms). */
  overdueMs?: number;
}

/**
 * Ticks every `frameMs` on a fixed grid: frame n is due at start + n·frameMs, so timer jitter
 * never accumulates into drift. The timer runs only while someone listens.
 *
 * Inbound audio pokes the clock ({@link FrameClock.poke}). Under full CPU load Bun 1.4.5 has
 * left timers armed before some moment unfired for ten seconds and more (setTimeout, setInterval
 * and `Bun.sleep` alike, not cleared, while timers armed afterwards fired), so every session on
 * the node stopped sending audio whenever its own caller was silent. A poke that finds the tick
 * long overdue ticks at once and arms a fresh timer; the old one, should it fire after all, is
 * ignored.
 */
export class FrameClock {
  readonly frameMs: number;
  readonly maxCatchUpFrames: number;
  /** Frames dropped by the catch-up bound since construction. */
  skippedFrames = 0;
  /** Tick timers a poke found overdue by more than `overdueMs` and replaced, since construction. */
  replacedTimers = 0;
  /** How late past its due time an armed tick is replaced by a poke. */
  readonly overdueMs: number;
  private readonly now: () => number;
  private readonly onError: (error: unknown) => void;
  private readonly listeners = new Set<FrameListener>();
  private readonly timers: FrameTimers;
  private timer: unknown = null;
  private startMs = 0;
  private nextFrame = 1;
  /** Bumped whenever a tick timer is armed or abandoned: a stale timer's fire is ignored. */
  private generation = 0;
  /** When the armed tick timer is due. */
  private tickDueMs = 0;

  constructor(options: FrameClockOptions = {}) {
    this.frameMs = options.frameMs ?? 20;
    this.maxCatchUpFrames = options.maxCatchUpFrames ?? 3;
    if (!(this.frameMs > 0)) throw new RangeError(`frameMs must be positive, got ${this.frameMs}`);
    if (!(this.maxCatchUpFrames >= 1)) throw new RangeError('maxCatchUpFrames must be at least 1');
    this.now = options.now ?? (() => performance.now());
    this.timers = options.timers ?? globalTimers;
    this.overdueMs = options.overdueMs ?? 200;
    this.onError = options.onError ?? ((error) => console.error('frame clock listener failed', error));
  }

  /** Starts receiving ticks (joining the running grid, or starting it). Returns the unsubscribe. */
  subscribe(listener: FrameListener): () => void {
    this.listeners.add(listener);
    if (this.timer === null) {
      this.startMs = this.now();
      this.nextFrame = 1;
      this.schedule();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }

  /**
   * Called as inbound audio arrives (one comparison): if the armed tick is more than `overdueMs`
   * past due (the runtime left it unfired, or the event loop is that far behind), tick now and
   * arm a fresh timer.
   */
  poke(): void {
    if (this.timer === null || this.now() - this.tickDueMs <= this.overdueMs) return;
    this.replacedTimers++;
    this.generation++; // the abandoned timer's fire, should it come, does nothing
    this.onTimer();
  }

  /** Whether the timer is armed (true exactly while there are listeners). */
  get running(): boolean {
    return this.timer !== null;
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  private stop(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    this.generation++;
  }

  private schedule(): void {
    const now = this.now();
    const delayMs = Math.max(1, Math.ceil(this.startMs + this.nextFrame * this.frameMs - now));
    const generation = ++this.generation;
    this.tickDueMs = now + delayMs;
    this.timer = this.timers.setTimeout(() => {
      if (generation === this.generation) this.onTimer();
    }, delayMs);
  }

  private onTimer(): void {
    this.timer = null;
    const dueFrame = Math.floor((this.now() - this.startMs) / this.frameMs);
    const behind = dueFrame - this.nextFrame + 1;
    if (behind > this.maxCatchUpFrames) {
      this.skippedFrames += behind - this.maxCatchUpFrames;
      this.nextFrame = dueFrame - this.maxCatchUpFrames + 1;
    }
    // A listener may unsubscribe everyone (stop) or restart the clock (timer re-armed): stop then.
    while (this.nextFrame <= dueFrame && this.listeners.size > 0 && this.timer === null) {
      const frame = this.nextFrame++;
      const deadlineMs = this.startMs + frame * this.frameMs;
      for (const listener of this.listeners) {
        try {
          listener(frame, deadlineMs);
        } catch (error) {
          this.onError(error);
        }
      }
    }
    if (this.listeners.size > 0 && this.timer === null) this.schedule();
  }
}

let shared: FrameClock | null = null;

/** The node-wide 20 ms clock every session paces against. */
export function sharedFrameClock(): FrameClock {
  shared ??= new FrameClock();
  return shared;
}

/** Samples in one frame, e.g. 160 at 8 kHz for 20 ms. Throws if that is not a whole number. */
export function samplesPerFrame(sampleRate: number, frameMs = 20): number {
  const samples = (sampleRate * frameMs) / 1000;
  if (!Number.isInteger(samples) || samples <= 0) {
    throw new RangeError(`${frameMs} ms at ${sampleRate} Hz is not a whole number of samples`);
  }
  return samples;
}

/** Bytes in one mono frame of `encoding`: 160 for 20 ms of 8 kHz mu-law, 640 for 16 kHz L16. */
export function bytesPerFrame(encoding: AudioEncoding, sampleRate: number, frameMs = 20): number {
  return samplesPerFrame(sampleRate, frameMs) * (encoding === 'pcm16' ? 2 : 1);
}
