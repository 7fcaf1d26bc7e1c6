import { randomUUID } from 'node:crypto';
import type { Logger } from '../../observability/log.ts';
import { StoreUnavailableError } from '../../store/redis-store.ts';
import type { StatusUpdate } from './admission.ts';

/** Updates held at most while the Store is down: some hours of a busy node's status callbacks. */
export const DEFAULT_MAX_PENDING_STATUSES = 10_000;

export interface StatusOutboxOptions {
  /** Reports one update for good (the admission's `statusChanged`). */
  deliver: (update: StatusUpdate) => Promise<void>;
  /** Runs at once for an update that is kept for later (ends the call's session here). */
  onBuffered?: (update: StatusUpdate) => void;
  log: Logger;
  /** Whether the Store answered its last probe; when not, updates are kept without trying. */
  storeUp?: () => boolean;
  maxPending?: number;
  /** First retry after this long, doubling up to `retryMaxMs`. Defaults 250 ms and 5 s. */
  retryMinMs?: number;
  retryMaxMs?: number;
}

/**
 * Why a status callback acknowledged during a Store outage is not lost: an update the Store
 * cannot take now is kept in memory (in order, at most `maxPending`) and delivered again until
 * the Store takes it. Each update carries its receipt time and one delivery id from the start,
 * so a retry reports the time the provider told us and re-takes its own replay claim instead of
 * finding it taken by an earlier, half-done attempt. A full outbox accepts nothing: the
 * provider gets an error and retries itself. Kept in memory only, so a node stopped during an
 * outage loses what it still holds (it says so in its log).
 */
export class StatusOutbox {
  private readonly queue: StatusUpdate[] = [];
  private readonly maxPending: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private retryMs: number;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private flushing: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly opts: StatusOutboxOptions) {
    this.maxPending = opts.maxPending ?? DEFAULT_MAX_PENDING_STATUSES;
    this.retryMinMs = opts.retryMinMs ?? 250;
    this.retryMaxMs = opts.retryMaxMs ?? 5_000;
    this.retryMs = this.retryMinMs;
  }

  /** Updates waiting for the Store. */
  get pending(): number {
    return this.queue.length;
  }

  /**
   * Reports the update now, or keeps it when the Store cannot take it. True once it is
   * reported or kept (acknowledge it); false when the outbox is full (do not).
   */
  async accept(update: StatusUpdate): Promise<boolean> {
    const stamped: StatusUpdate = {
      ...update,
      at: update.at ?? new Date().toISOString(),
      deliveryId: update.deliveryId ?? randomUUID(),
    };
    // Behind updates already waiting, so a call's states keep their order.
    if (this.queue.length === 0 && (this.opts.storeUp?.() ?? true)) {
      try {
        await this.opts.deliver(stamped);
        return true;
      } catch (err) {
        if (!(err instanceof StoreUnavailableError)) throw err;
      }
    }
    if (this.queue.length >= this.maxPending) {
      this.opts.log.error(
        { callId: stamped.callId, status: stamped.status, pending: this.queue.length },
        'call status refused: outbox full',
      );
      return false;
    }
    this.queue.push(stamped);
    this.opts.log.warn(
      { callId: stamped.callId, status: stamped.status, pending: this.queue.length },
      'call status kept until the store is back',
    );
    this.opts.onBuffered?.(stamped);
    this.schedule();
    return true;
  }

  /** Tries to deliver everything waiting now; resolves with how many are still waiting. */
  async flush(): Promise<number> {
    this.flushing ??= this.deliverQueued().finally(() => {
      this.flushing = undefined;
    });
    await this.flushing;
    return this.queue.length;
  }

  /** Stops retrying; what is still waiting stays in `pending`. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.stopped || this.timer || this.queue.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush().then((left) => {
        if (left === 0) this.retryMs = this.retryMinMs;
        else {
          this.retryMs = Math.min(this.retryMs * 2, this.retryMaxMs);
          this.schedule();
        }
      });
    }, this.retryMs);
    this.timer.unref?.();
  }

  private async deliverQueued(): Promise<void> {
    let delivered = 0;
    while (this.queue.length > 0) {
      const next = this.queue[0]!;
      try {
        await this.opts.deliver(next);
      } catch (err) {
        if (err instanceof StoreUnavailableError) return;
        // Not an outage: retrying cannot help, and it must not hold up the ones behind it.
        this.opts.log.error(
          { callId: next.callId, status: next.status, err: (err as Error).message },
          'kept call status dropped',
        );
      }
      this.queue.shift();
      delivered++;
    }
    if (delivered > 0) this.opts.log.info({ delivered }, 'kept call statuses delivered');
  }
}
