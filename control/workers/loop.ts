/** Small pieces the workers' loops share. */

/** Exponential backoff with jitter: `minMs`, doubling to `maxMs`; `reset()` after a success. */
export class Backoff {
  private currentMs: number;

  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
  ) {
    this.currentMs = minMs;
  }

  /** The next delay: the current one ±20 %, then doubles it. */
  next(): number {
    const delay = this.currentMs * (0.8 + Math.random() * 0.4);
    this.currentMs = Math.min(this.maxMs, this.currentMs * 2);
    return Math.round(delay);
  }

  reset(): void {
    this.currentMs = this.minMs;
  }
}

/** A stop flag whose `sleep` ends early when `stop()` is called, so loops stop promptly. */
export class Stopper {
  stopped = false;
  private readonly wakers = new Set<() => void>();

  stop(): void {
    this.stopped = true;
    for (const wake of this.wakers) wake();
    this.wakers.clear();
  }

  sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }
}
