import { leaseRecordKey } from '../../core/capacity/call-capacity.ts';
import type { Logger } from '../../core/observability/index.ts';
import { keys, type Store } from '../../core/store/index.ts';
import type { Sql } from '../db/index.ts';
import { callsChanged } from '../modules/calls/changes.ts';
import { Backoff, Stopper } from './loop.ts';
import { DEFAULT_TIMELINE_TTL_MS, insertCallEvent, parseTimeline } from './recorder.ts';

export interface OrphanSweeperOptions {
  /**
   * The lease TTL (TELEPHONY_SEMAPHORE_TTL_SEC × 1000). A call not heard from for longer than
   * this whose lease record is gone from the Store has no node renewing it any more.
   */
  leaseTtlMs: number;
  /**
   * Longer than any call can last (ringing + the longest call + the lease TTL). A live call
   * older than this is closed whatever the Store says: native sessions hold no leases.
   */
  maxCallMs: number;
  /** How often to look. Default 60 s. */
  everyMs?: number;
  /** Calls looked at per pass. Default 500. */
  batchSize?: number;
  /** How long the closed call's own stream stays in the Store (CALL_TIMELINE_TTL_SEC × 1000). */
  timelineTtlMs?: number;
  /** The clock the ages are measured by; tests move it. */
  now?: () => number;
}

interface Candidate {
  id: string;
  provider: string | null;
  started_at: Date;
}

const LIVE = ['queued', 'ringing', 'in-progress'];

/**
 * Closes calls nobody will ever report the end of: the core node running them died and the
 * provider's status callback never came, so without it they would stay `in-progress` forever.
 * A live call qualifies once control has heard nothing of it for longer than the lease TTL and
 * its lease record is gone from the Store (no node renews it), or once it is older than any
 * call can be. It is closed `failed` with end reason `lost` (`never_streamed` when core
 * admitted it but no session ever started), keeping the steps its own stream still holds, and
 * that stream is set to expire. Closing is idempotent and guarded by the same age test in
 * Postgres, so several control nodes may sweep at once; a `call.ended` that arrives after all
 * still wins (the recorder treats these end reasons as provisional).
 */
export class OrphanSweeper {
  private readonly opts: Required<Omit<OrphanSweeperOptions, 'now'>>;
  private readonly now: () => number;
  private stopper = new Stopper();
  private loop: Promise<void> | null = null;
  /** Calls closed by this sweeper. */
  closed = 0;

  constructor(
    private readonly deps: { sql: Sql; store: Store; log: Logger },
    opts: OrphanSweeperOptions,
  ) {
    this.opts = {
      leaseTtlMs: opts.leaseTtlMs,
      maxCallMs: opts.maxCallMs,
      everyMs: opts.everyMs ?? 60_000,
      batchSize: opts.batchSize ?? 500,
      timelineTtlMs: opts.timelineTtlMs ?? DEFAULT_TIMELINE_TTL_MS,
    };
    this.now = opts.now ?? Date.now;
  }

  /** Starts sweeping every `everyMs` (again, after a `stop()`); a second call while running does nothing. */
  start(): void {
    if (this.loop) return;
    this.stopper = new Stopper();
    this.loop = this.run().catch((err: unknown) =>
      this.deps.log.error({ err: (err as Error).message }, 'orphan sweeper stopped on an unexpected error'),
    );
  }

  /** Stops; a pass under way finishes first. */
  async stop(): Promise<void> {
    this.stopper.stop();
    await this.loop;
    this.loop = null;
  }

  private async run(): Promise<void> {
    const backoff = new Backoff(1_000, this.opts.everyMs);
    while (!this.stopper.stopped) {
      let delayMs = this.opts.everyMs;
      try {
        await this.sweep();
        backoff.reset();
      } catch (err) {
        delayMs = backoff.next();
        this.deps.log.warn({ err: (err as Error).message, retryInMs: delayMs }, 'orphan sweep failed');
      }
      await this.stopper.sleep(delayMs);
    }
  }

  /** One pass: closes the orphaned calls it finds (up to `batchSize`) and returns how many. */
  async sweep(): Promise<number> {
    const { sql, store } = this.deps;
    const now = this.now();
    const quietSince = new Date(now - this.opts.leaseTtlMs);
    const startedBefore = new Date(now - this.opts.maxCallMs);
    const candidates = await sql<Candidate[]>`
      select id, provider, started_at from calls
      where status = any(${LIVE}::text[]) and updated_at < ${quietSince}
      order by updated_at, id
      limit ${this.opts.batchSize}`;
    if (candidates.length === 0) return 0;
    const records = await store.getMany(candidates.map((c) => leaseRecordKey(c.id)));
    const orphans = candidates.filter(
      (c, i) =>
        c.started_at < startedBefore ||
        // Native sessions take no leases: only their age tells.
        (records[i] === null && c.provider !== 'native'),
    );
    if (orphans.length === 0) return 0;
    const timelines = new Map<string, ReturnType<typeof parseTimeline>>();
    for (const c of orphans) timelines.set(c.id, parseTimeline(await store.range(keys.callTimeline(c.id))));
    const endedAt = new Date(now);
    const closed = await sql.begin(async (tx) => {
      const out: { id: string; end_reason: string }[] = [];
      for (const c of orphans) {
        const [row] = await tx<{ id: string; end_reason: string }[]>`
          update calls set
            status = 'failed',
            ended_at = coalesce(ended_at, ${endedAt}),
            end_reason = case
              when exists (select 1 from call_events where call_id = ${c.id} and type = 'call.started')
                then 'lost'
              when exists (select 1 from call_events where call_id = ${c.id} and type = 'call.admitted')
                then 'never_streamed'
              else 'lost' end,
            updated_at = now()
          where id = ${c.id} and status = any(${LIVE}::text[]) and updated_at < ${quietSince}
          returning id, end_reason`;
        if (!row) continue;
        for (const step of timelines.get(c.id) ?? [])
          if (step.callId === c.id) await insertCallEvent(tx, step);
        out.push(row);
      }
      return out;
    });
    await callsChanged(
      store,
      closed.map((row) => row.id),
    );
    for (const row of closed) await store.expire(keys.callTimeline(row.id), this.opts.timelineTtlMs);
    if (closed.length > 0) {
      this.closed += closed.length;
      this.deps.log.info(
        {
          count: closed.length,
          lost: closed.filter((r) => r.end_reason === 'lost').length,
          neverStreamed: closed.filter((r) => r.end_reason === 'never_streamed').length,
        },
        'orphaned calls closed',
      );
    }
    return closed.length;
  }
}
