import type { Store, StoreHealth } from './store.ts';

export interface StoreHealthProbeOptions {
  /** How often the Store is asked. Default 1 000 ms. */
  intervalMs?: number;
  /** Longest one probe may take before it counts as failed. Default: `intervalMs`. */
  timeoutMs?: number;
  /** An answer older than this is stale (the probe is stuck): the Store is down. Default 3 × interval. */
  staleAfterMs?: number;
  /** The clock results are stamped with; tests move it. */
  now?: () => number;
}

/** The last probe's answer, and how old it is. */
export interface ProbedHealth extends StoreHealth {
  /** Milliseconds since the probe that produced this answer finished. */
  ageMs: number;
}

/**
 * Why `/health` and call admission never wait on the Store: a background probe asks it every
 * `intervalMs` (bounded by `timeoutMs`) and keeps the answer, so a question about the Store's
 * state is answered at once from that answer, as down when the last probe failed or is stale.
 */
export class StoreHealthProbe {
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly staleAfterMs: number;
  private readonly now: () => number;
  private last: { health: StoreHealth; at: number } | undefined;
  private first: Promise<void> | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;

  constructor(
    private readonly store: Store,
    opts: StoreHealthProbeOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? 1_000;
    this.timeoutMs = opts.timeoutMs ?? this.intervalMs;
    this.staleAfterMs = opts.staleAfterMs ?? 3 * this.intervalMs;
    this.now = opts.now ?? Date.now;
  }

  /** Starts probing (the first probe at once). Idempotent. */
  start(): this {
    if (this.first || this.stopped) return this;
    this.first = this.loop();
    return this;
  }

  /** Stops probing; the last answer stays (and goes stale). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Resolves once the first probe has answered (at most `timeoutMs` after `start()`). */
  async ready(): Promise<void> {
    await this.start().first;
  }

  /** The last answer, or down when there is none yet, it failed, or it is stale. */
  current(): ProbedHealth {
    const kind = this.store.kind;
    if (!this.last) return { ok: false, kind, error: 'not probed yet', ageMs: 0 };
    const ageMs = Math.max(0, this.now() - this.last.at);
    if (ageMs > this.staleAfterMs) {
      return { ok: false, kind, error: `last probe ${ageMs} ms ago`, ageMs };
    }
    return { ...this.last.health, ageMs };
  }

  /** Whether the Store answered the last probe, and recently. */
  get ok(): boolean {
    return this.current().ok;
  }

  /** Probes once now and keeps the answer. */
  async probe(): Promise<StoreHealth> {
    const health = await probeOnce(this.store, this.timeoutMs);
    this.last = { health, at: this.now() };
    return health;
  }

  private async loop(): Promise<void> {
    await this.probe();
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.probe().finally(() => this.schedule());
    }, this.intervalMs);
    // A probe never keeps the process alive on its own.
    this.timer.unref?.();
  }
}

async function probeOnce(store: Store, timeoutMs: number): Promise<StoreHealth> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<StoreHealth>((resolve) => {
    timer = setTimeout(
      () => resolve({ ok: false, kind: store.kind, error: `no answer within ${timeoutMs} ms` }),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([
      store
        .health()
        .catch(
          (err: unknown): StoreHealth => ({ ok: false, kind: store.kind, error: (err as Error).message }),
        ),
      timedOut,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
