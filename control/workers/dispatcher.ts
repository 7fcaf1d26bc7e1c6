import { Counter, Gauge } from 'prom-client';
import type { Logger } from '../../core/observability/index.ts';
import { registry } from '../../core/observability/metrics.ts';
import type { Sql } from '../db/index.ts';
import {
  type AttemptOutcome,
  attemptDelivery,
  type ClaimedDelivery,
  claimDue,
  type DeliveryPolicy,
  failExhausted,
  measureOutbox,
  type OutboxLag,
} from '../modules/webhooks/delivery.ts';
import { Backoff, Stopper } from './loop.ts';

/** Webhook attempts by outcome. */
export const webhookAttemptsTotal = new Counter({
  name: 'sipai_webhook_attempts_total',
  help: 'Webhook delivery attempts, by outcome: delivered, retrying (will be tried again), failed (gave up).',
  labelNames: ['outcome'],
  registers: [registry],
});

/** How far the outbox is behind: the age of the oldest delivery that is due and not sent. */
export const webhookOutboxLagSeconds = new Gauge({
  name: 'sipai_webhook_outbox_lag_seconds',
  help: 'Age of the oldest due webhook delivery (0 when none is waiting).',
  registers: [registry],
});

/** Deliveries in the outbox not yet delivered or failed (due now or waiting to retry). */
export const webhookOutboxPending = new Gauge({
  name: 'sipai_webhook_outbox_pending',
  help: 'Webhook deliveries pending in the outbox (due now or waiting to retry), of enabled endpoints.',
  registers: [registry],
});

export interface DispatcherOptions {
  /** Requests in flight at once. Default 16. */
  concurrency?: number;
  /** Sleep between polls when nothing is due. Default 250 ms. */
  pollMs?: number;
  /**
   * How long a claimed delivery is leased to this dispatcher before another may take it over
   * (it died mid-request). Default the request timeout plus 30 s.
   */
  leaseMs?: number;
  /** How often the outbox lag is measured (the gauges) and spent deliveries are failed. Default 5 s. */
  lagEveryMs?: number;
  /** Backoff after a failed poll (Postgres down). Default 100 ms doubling to 5 s. */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** The clock deliveries are scheduled by; tests move it. */
  now?: () => number;
  random?: () => number;
}

/**
 * The webhook dispatcher: claims due deliveries from the outbox (`FOR UPDATE SKIP LOCKED`, so
 * any number of dispatchers share it), POSTs each signed with a timeout, and records the
 * outcome: delivered, retried later with exponential backoff and jitter (network errors,
 * timeouts, 408, 429, 5xx; `Retry-After` honoured), or failed once the attempts are spent or
 * the receiver refused it. Deliveries are at least once: a dispatcher that dies mid-request
 * leaves its rows leased, and the next one sends them again with the same `webhook-id`.
 * A Postgres outage is retried with backoff and logged once per streak, not per poll: one
 * warning when the outbox cannot be read (or an attempt's outcome cannot be written), one line
 * when it can again, with how many polls and records failed meanwhile.
 */
export class Dispatcher {
  private readonly opts: Required<Omit<DispatcherOptions, 'random'>> & { random?: () => number };
  private stopper = new Stopper();
  private loop: Promise<void> | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  /** The current streak of failures (Postgres out of reach), or null while all is well. */
  private streak: { polls: number; unrecorded: number } | null = null;
  private lastLagAt = 0;
  /** Attempts this dispatcher made, by outcome. */
  readonly counts: Record<AttemptOutcome, number> = { delivered: 0, retrying: 0, failed: 0 };
  /** Polls that failed (the outbox out of reach), and attempts whose outcome could not be written. */
  failedPolls = 0;
  unrecordedAttempts = 0;
  /** The outbox as last measured (every `lagEveryMs`). */
  outbox: OutboxLag = { pending: 0, due: 0, lagMs: 0 };

  /** The outbox lag last measured, in ms. */
  get lagMs(): number {
    return this.outbox.lagMs;
  }

  constructor(
    private readonly deps: { sql: Sql; log: Logger },
    private readonly policy: DeliveryPolicy,
    opts: DispatcherOptions = {},
  ) {
    this.opts = {
      concurrency: opts.concurrency ?? 16,
      pollMs: opts.pollMs ?? 250,
      leaseMs: opts.leaseMs ?? policy.timeoutMs + 30_000,
      lagEveryMs: opts.lagEveryMs ?? 5_000,
      retryMinMs: opts.retryMinMs ?? 100,
      retryMaxMs: opts.retryMaxMs ?? 5_000,
      now: opts.now ?? Date.now,
      random: opts.random,
    };
  }

  /** Starts the loop (again, after a `stop()`); a second call while running does nothing. */
  start(): void {
    if (this.loop) return;
    this.stopper = new Stopper();
    this.loop = this.run().catch((err: unknown) =>
      this.deps.log.error(
        { err: (err as Error).message },
        'webhook dispatcher stopped on an unexpected error',
      ),
    );
  }

  /** Stops claiming; requests in flight finish and are recorded. */
  async stop(): Promise<void> {
    this.stopper.stop();
    await this.loop;
    this.loop = null;
  }

  private async run(): Promise<void> {
    const backoff = new Backoff(this.opts.retryMinMs, this.opts.retryMaxMs);
    while (!this.stopper.stopped) {
      const free = this.opts.concurrency - this.inFlight.size;
      if (free <= 0) {
        await Promise.race(this.inFlight);
        continue;
      }
      let claimed: ClaimedDelivery[];
      try {
        await this.housekeeping();
        claimed = await claimDue(this.deps.sql, {
          limit: free,
          leaseMs: this.opts.leaseMs,
          maxAttempts: this.policy.maxAttempts,
          nowMs: this.opts.now(),
        });
        this.endStreak();
        backoff.reset();
      } catch (err) {
        if (this.stopper.stopped) break;
        const delayMs = backoff.next();
        this.failedPolls++;
        this.failure(err, 'poll', { retryInMs: delayMs });
        await this.stopper.sleep(delayMs);
        continue;
      }
      for (const d of claimed) this.launch(d);
      if (claimed.length === 0) {
        // Nothing due: wait for the poll interval, or for a request to finish and free a slot.
        await Promise.race([this.stopper.sleep(this.opts.pollMs), ...this.inFlight]);
      }
    }
    await Promise.all(this.inFlight);
  }

  private launch(d: ClaimedDelivery): void {
    const task = this.deliver(d).finally(() => this.inFlight.delete(task));
    this.inFlight.add(task);
  }

  private async deliver(d: ClaimedDelivery): Promise<void> {
    try {
      const { outcome } = await attemptDelivery(this.deps.sql, d, this.policy, {
        log: this.deps.log,
        nowMs: this.opts.now,
        random: this.opts.random,
      });
      this.counts[outcome]++;
      webhookAttemptsTotal.inc({ outcome });
    } catch (err) {
      // The outcome could not be written (Postgres went away): the lease lapses and the
      // delivery is attempted again, with the same webhook-id.
      this.unrecordedAttempts++;
      this.failure(err, 'record', { deliveryId: d.id });
    }
  }

  /** Counts a failure; only the first of a streak is logged. */
  private failure(err: unknown, kind: 'poll' | 'record', fields: Record<string, unknown>): void {
    if (this.streak) {
      if (kind === 'poll') this.streak.polls++;
      else this.streak.unrecorded++;
      return;
    }
    this.streak = { polls: kind === 'poll' ? 1 : 0, unrecorded: kind === 'record' ? 1 : 0 };
    this.deps.log.warn(
      { err: (err as Error).message, ...fields },
      kind === 'poll'
        ? 'webhook dispatcher cannot read the outbox, retrying'
        : 'webhook attempt not recorded, it will be attempted again',
    );
  }

  /** The outbox answered: a streak of failures, if any, ends with one line. */
  private endStreak(): void {
    if (!this.streak) return;
    const { polls, unrecorded } = this.streak;
    this.streak = null;
    this.deps.log.info(
      { failedPolls: polls, unrecordedAttempts: unrecorded },
      'webhook dispatcher reaches the outbox again',
    );
  }

  /**
   * Every `lagEveryMs`: fails deliveries whose last attempt never reported back, and measures
   * the outbox lag.
   */
  private async housekeeping(): Promise<void> {
    const now = this.opts.now();
    if (now - this.lastLagAt < this.opts.lagEveryMs) return;
    this.lastLagAt = now;
    await failExhausted(this.deps.sql, { maxAttempts: this.policy.maxAttempts, nowMs: now });
    this.outbox = await measureOutbox(this.deps.sql, now);
    webhookOutboxLagSeconds.set(this.outbox.lagMs / 1000);
    webhookOutboxPending.set(this.outbox.pending);
  }
}
