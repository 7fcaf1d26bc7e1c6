/** What one socket may send: a sustained rate, a burst above it, and when it is closed. */
export interface MessageRateOptions {
  /** Messages per second a socket may send for as long as it likes (20 ms audio is 50/s). */
  perSec: number;
  /** Messages it may send at once above that rate (jitter bunches frames together). */
  burst: number;
  /**
   * The burst a socket starts with, until {@link MessageRateLimiter.fill}: a client needs only a
   * message or two before its `start`, so a flood that reconnects gets little per socket.
   * Default: `burst`.
   */
  initialBurst?: number;
  /**
   * Messages dropped within one second after which the socket is judged a flood and closed.
   * Default: `perSec`, i.e. a socket sending at least twice its rate for a full second.
   */
  closeAfterDropsPerSec?: number;
  /** Monotonic milliseconds; injected by tests. Default: `performance.now`. */
  now?: () => number;
}

/** What to do with one message: handle it, drop it (counted), or close the socket. */
export type RateVerdict = 'accept' | 'drop' | 'close';

/**
 * A token bucket per socket, checked before a message is even parsed, so one socket cannot
 * spend the event loop that every other call shares. A socket a little over its rate loses
 * the excess; one persistently over it is closed.
 */
export class MessageRateLimiter {
  private tokens: number;
  private last: number;
  private windowStart: number;
  private droppedInWindow = 0;
  private readonly perMs: number;
  private readonly closeAfter: number;
  private readonly now: () => number;

  constructor(private readonly opts: MessageRateOptions) {
    if (!(opts.perSec > 0) || !(opts.burst >= 1)) {
      throw new RangeError(`perSec must be > 0 and burst >= 1, got ${opts.perSec} and ${opts.burst}`);
    }
    this.now = opts.now ?? (() => performance.now());
    this.perMs = opts.perSec / 1000;
    this.closeAfter = opts.closeAfterDropsPerSec ?? opts.perSec;
    this.tokens = Math.min(opts.burst, opts.initialBurst ?? opts.burst);
    this.last = this.now();
    this.windowStart = this.last;
  }

  /** The socket proved itself (a valid `start`): it may use its whole burst from now on. */
  fill(): void {
    this.tokens = this.opts.burst;
    this.last = this.now();
  }

  /** Accounts one message. */
  take(): RateVerdict {
    const now = this.now();
    this.tokens = Math.min(this.opts.burst, this.tokens + (now - this.last) * this.perMs);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 'accept';
    }
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.droppedInWindow = 0;
    }
    return ++this.droppedInWindow > this.closeAfter ? 'close' : 'drop';
  }
}
