import type { Logger } from '../../core/observability/index.ts';
import type { Store, StreamEntry } from '../../core/store/index.ts';
import { sanitizeText } from '../../core/wire/sanitize.ts';
import type { Sql } from '../db/index.ts';
import { Backoff, Stopper } from './loop.ts';
import { deadLettersTotal } from './metrics.ts';

/** What went wrong with a batch: a dependency is down (retry, lose nothing) or the data was refused. */
export type FailureKind = 'unavailable' | 'rejected';

/**
 * SQLSTATE classes in which Postgres refuses the data itself, so retrying the same entry can
 * never succeed: 22 data exception (NUL in text, `unsupported Unicode escape sequence` in jsonb,
 * invalid JSON, out-of-range values) and 23 integrity constraint violation.
 */
const DATA_CLASSES = new Set(['22', '23']);

/**
 * The default classification: a Postgres error in a data class is `rejected`; everything else
 * (connection refused or cut, admin shutdown, serialization failures, a Store outage, an
 * unexpected exception) is `unavailable` and retried without end, so an outage never costs an
 * event. Only data Postgres itself refused is ever set aside.
 */
export function classifyPostgresError(err: unknown): FailureKind {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && DATA_CLASSES.has(code.slice(0, 2)))
    return 'rejected';
  return 'unavailable';
}

export interface StreamConsumerOptions {
  /** The stream to consume. */
  stream: string;
  /** Consumer group name; created at the start of the stream if missing. */
  group: string;
  /** This consumer's name; unique per process. */
  consumer: string;
  /** Entries per read, handed to the handler at once. Default 100. */
  batchSize?: number;
  /** How long a read waits for new entries. Default 500 ms. */
  blockMs?: number;
  /** Entries delivered this long ago and never acked belong to a dead consumer: claim them. Default 30 s. */
  claimIdleMs?: number;
  /** How often to look for such entries. Default 5 s. */
  claimEveryMs?: number;
  /** Backoff between failed attempts. Default 100 ms, doubling to 5 s. */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Attempts at one entry Postgres refuses as data before it goes to `dead_letters`. Default 3. */
  maxAttempts?: number;
}

export interface StreamConsumerDeps {
  store: Store;
  /** Where dead letters are written. */
  sql: Sql;
  log: Logger;
  /** Handles entries, all or nothing (one transaction); throws when it cannot. */
  handle: (entries: StreamEntry[]) => Promise<void>;
  /** Tells an outage from refused data; default `classifyPostgresError`. */
  classify?: (err: unknown) => FailureKind;
}

/**
 * The loop every stream worker shares (the recorder now, the webhook dispatcher next): reads
 * its consumer group, claims entries a dead consumer left pending, hands batches to `handle`
 * and acks only what was handled. A batch that fails because a dependency is down is retried
 * with backoff, whole and unacked, for as long as it takes. A batch that Postgres refuses as
 * data is split in halves, down to single entries, so the good entries around a bad one are
 * handled; a single entry refused `maxAttempts` times is written to `dead_letters` with its
 * error, counted (`sipai_stream_dead_letters_total`), logged once, and acked. One bad entry
 * therefore never stops the stream for everyone else.
 */
export class StreamConsumer {
  private readonly opts: Required<StreamConsumerOptions>;
  private readonly classify: (err: unknown) => FailureKind;
  private stopper = new Stopper();
  private loop: Promise<void> | null = null;
  /** Entries moved to `dead_letters` by this consumer. */
  deadLettered = 0;

  constructor(
    private readonly deps: StreamConsumerDeps,
    opts: StreamConsumerOptions,
  ) {
    this.opts = {
      batchSize: 100,
      blockMs: 500,
      claimIdleMs: 30_000,
      claimEveryMs: 5_000,
      retryMinMs: 100,
      retryMaxMs: 5_000,
      maxAttempts: 3,
      ...stripUndefined(opts),
    };
    this.classify = deps.classify ?? classifyPostgresError;
  }

  get consumer(): string {
    return this.opts.consumer;
  }

  get group(): string {
    return this.opts.group;
  }

  /** Starts the loop (again, after a `stop()`); a second call while running does nothing. */
  start(): void {
    if (this.loop) return;
    this.stopper = new Stopper();
    this.loop = this.run().catch((err: unknown) =>
      this.deps.log.error(
        { stream: this.opts.stream, group: this.opts.group, err: (err as Error).message },
        'stream consumer stopped on an unexpected error',
      ),
    );
  }

  /** Stops reading; a batch being handled is abandoned unacked (another consumer will claim it). */
  async stop(): Promise<void> {
    this.stopper.stop();
    await this.loop;
    this.loop = null;
  }

  private async run(): Promise<void> {
    const { store, log } = this.deps;
    const { stream, group, consumer } = this.opts;
    const backoff = new Backoff(this.opts.retryMinMs, this.opts.retryMaxMs);
    while (!this.stopper.stopped) {
      try {
        await store.createGroup(stream, group, '0');
        break;
      } catch (err) {
        log.warn(
          { stream, group, err: (err as Error).message },
          'stream consumer cannot reach its stream, retrying',
        );
        await this.stopper.sleep(backoff.next());
      }
    }
    let lastClaimAt = 0;
    while (!this.stopper.stopped) {
      let entries: StreamEntry[];
      try {
        entries = [];
        if (Date.now() - lastClaimAt >= this.opts.claimEveryMs) {
          lastClaimAt = Date.now();
          entries = await store.claimIdle(stream, group, consumer, {
            minIdleMs: this.opts.claimIdleMs,
            count: this.opts.batchSize,
          });
          if (entries.length > 0)
            log.info({ stream, group, count: entries.length }, 'stream consumer claimed idle entries');
        }
        if (entries.length === 0) {
          entries = await store.readGroup(stream, group, consumer, {
            count: this.opts.batchSize,
            blockMs: this.opts.blockMs,
          });
        }
        backoff.reset();
      } catch (err) {
        if (this.stopper.stopped) break;
        const message = (err as Error).message;
        log.warn({ stream, group, err: message }, 'stream consumer read failed, retrying');
        await this.stopper.sleep(backoff.next());
        // The stream and its group are gone (a flushed Redis): start over from what is there.
        if (message.includes('NOGROUP')) await store.createGroup(stream, group, '0').catch(() => {});
        continue;
      }
      if (entries.length === 0) continue;
      if (!(await this.process(entries))) break;
    }
  }

  /**
   * Handles `entries` and acks them, splitting on refused data. True when every entry was
   * handled or dead-lettered; false when the consumer stopped first (the rest stays unacked).
   */
  private async process(entries: StreamEntry[]): Promise<boolean> {
    const outcome = await this.attempt(entries);
    if (outcome === 'stopped') return false;
    if (outcome === 'done') {
      await this.ack(entries);
      return true;
    }
    if (entries.length > 1) {
      const half = Math.ceil(entries.length / 2);
      return (await this.process(entries.slice(0, half))) && (await this.process(entries.slice(half)));
    }
    return this.retryOne(entries[0]!, outcome.err);
  }

  /**
   * One handle call, repeated with backoff while a dependency is down. `rejected` carries the
   * error Postgres refused the data with.
   */
  private async attempt(entries: StreamEntry[]): Promise<'done' | 'stopped' | { err: unknown }> {
    const backoff = new Backoff(this.opts.retryMinMs, this.opts.retryMaxMs);
    for (;;) {
      try {
        await this.deps.handle(entries);
        return 'done';
      } catch (err) {
        if (this.classify(err) === 'rejected') return { err };
        if (this.stopper.stopped) return 'stopped';
        const delayMs = backoff.next();
        this.deps.log.warn(
          {
            stream: this.opts.stream,
            group: this.opts.group,
            err: (err as Error).message,
            entries: entries.length,
            retryInMs: delayMs,
          },
          'stream consumer could not handle entries, retrying',
        );
        await this.stopper.sleep(delayMs);
        if (this.stopper.stopped) return 'stopped';
      }
    }
  }

  /** A single refused entry: a few more tries with backoff, then `dead_letters`. */
  private async retryOne(entry: StreamEntry, firstErr: unknown): Promise<boolean> {
    const backoff = new Backoff(this.opts.retryMinMs, this.opts.retryMaxMs);
    let lastErr = firstErr;
    for (let attempts = 1; attempts < this.opts.maxAttempts; ) {
      await this.stopper.sleep(backoff.next());
      if (this.stopper.stopped) return false;
      const outcome = await this.attempt([entry]);
      if (outcome === 'stopped') return false;
      if (outcome === 'done') {
        await this.ack([entry]);
        return true;
      }
      lastErr = outcome.err;
      attempts++;
    }
    if (!(await this.deadLetter(entry, lastErr))) return false;
    await this.ack([entry]);
    return true;
  }

  /** Writes the entry to `dead_letters` (retrying while Postgres is down); false if stopped first. */
  private async deadLetter(entry: StreamEntry, err: unknown): Promise<boolean> {
    const { stream, group, consumer, maxAttempts } = this.opts;
    // JSON escapes NUL and lone surrogates, so the payload is always valid `text`.
    const payload = JSON.stringify(entry.fields);
    const error = sanitizeText(describe(err), 2000);
    const backoff = new Backoff(this.opts.retryMinMs, this.opts.retryMaxMs);
    for (;;) {
      try {
        await this.deps.sql`
          insert into dead_letters (stream, consumer_group, entry_id, consumer, payload, error, attempts)
          values (${stream}, ${group}, ${entry.id}, ${consumer}, ${payload}, ${error}, ${maxAttempts})
          on conflict (stream, consumer_group, entry_id) do update set
            attempts = dead_letters.attempts + excluded.attempts, error = excluded.error`;
        break;
      } catch (writeErr) {
        if (this.stopper.stopped) return false;
        this.deps.log.warn(
          { stream, group, id: entry.id, err: (writeErr as Error).message },
          'stream consumer could not write a dead letter, retrying',
        );
        await this.stopper.sleep(backoff.next());
        if (this.stopper.stopped) return false;
      }
    }
    this.deadLettered++;
    deadLettersTotal.inc({ stream, group });
    this.deps.log.error(
      { stream, group, id: entry.id, attempts: maxAttempts, err: error },
      'stream entry refused by Postgres, moved to dead_letters',
    );
    return true;
  }

  private async ack(entries: StreamEntry[]): Promise<void> {
    const { stream, group } = this.opts;
    const ids = entries.map((e) => e.id);
    const backoff = new Backoff(this.opts.retryMinMs, this.opts.retryMaxMs);
    // At least one try even while stopping: the entries are handled, the ack is all that is left.
    for (let attempt = 0; attempt < 5 && (attempt === 0 || !this.stopper.stopped); attempt++) {
      try {
        await this.deps.store.ack(stream, group, ids);
        return;
      } catch (err) {
        this.deps.log.warn(
          { stream, group, err: (err as Error).message },
          'stream consumer ack failed, retrying',
        );
        await this.stopper.sleep(backoff.next());
      }
    }
    // Unacked entries are claimed again later; handlers are idempotent, so twice changes nothing.
  }
}

/** The error's message, with its SQLSTATE when it has one. */
function describe(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? `${code}: ${message}` : message;
}

/** `opts` without its undefined values, so they do not override defaults in a spread. */
function stripUndefined<T extends object>(opts: T): T {
  return Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as T;
}
