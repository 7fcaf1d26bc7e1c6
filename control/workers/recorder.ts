import { createHash, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { publicEventOf } from '../../core/events/from-core.ts';
import type { Logger } from '../../core/observability/index.ts';
import { keys, type Store, type StreamEntry } from '../../core/store/index.ts';
import type { Queryable, Sql } from '../db/index.ts';
import { callsChanged } from '../modules/calls/changes.ts';
import { latencySummary, type RecordedEvent } from '../modules/calls/index.ts';
import type { CallOutcome, CampaignService } from '../modules/campaigns/index.ts';
import { anyEndpointEnabled, enqueueCallEvent } from '../modules/webhooks/outbox.ts';
import { StreamConsumer, type StreamConsumerOptions } from './stream-consumer.ts';

/**
 * The recorder's loop settings (stream-consumer.ts documents each); the group defaults to
 * `recorder`, a batch is written in one transaction.
 */
export interface RecorderOptions extends Partial<Omit<StreamConsumerOptions, 'stream'>> {
  /**
   * How long a call's own stream stays in the Store once its `call.ended` is written
   * (CALL_TIMELINE_TTL_SEC × 1000). Default an hour.
   */
  timelineTtlMs?: number;
}

/** A call's own stream outlives its recording by this much unless told otherwise. */
export const DEFAULT_TIMELINE_TTL_MS = 60 * 60 * 1000;

/** One event of core's global stream, parsed (core/session/timeline.ts writes the fields). */
export interface CoreEvent {
  type: string;
  callId: string;
  agentId: string;
  protocol: string;
  at: Date;
  tMs: number | null;
  data: Record<string, unknown> | null;
  fingerprint: string;
  /** Its id in the call's own stream, when it was read from there. */
  streamId?: [ms: number, seq: number];
}

/** What core keeps at `keys.call(id)` while a call lives (core/telephony/webhooks/admission.ts). */
interface CoreCallRecord {
  provider?: string;
  providerCallId?: string;
  campaignId?: string;
  from?: string;
  to?: string;
}

const PROVIDERS = new Set(['jambonz', 'twilio', 'telnyx', 'native']);
const LIVE = ['queued', 'ringing', 'in-progress'];
/**
 * End reasons control gave a call it never heard the end of (`never_streamed`, and `lost` from
 * the orphan sweeper): the call's own `call.ended`, arriving late, still wins over them.
 */
export const PROVISIONAL_END_REASONS = ['never_streamed', 'lost'];

/** Refusal reasons (`call.refused`) and what they mean for a campaign contact. */
const REFUSAL_OUTCOME: Record<string, CallOutcome> = {
  at_capacity: 'busy',
  no_route: 'failed',
  unknown_agent: 'failed',
};

/** Provider statuses (Jambonz `call_status`, Twilio `CallStatus`) → our call status. */
const PROVIDER_STATUS: Record<string, 'ringing' | 'in-progress' | CallOutcome> = {
  ringing: 'ringing',
  'early-media': 'ringing',
  'in-progress': 'in-progress',
  answered: 'in-progress',
  completed: 'completed',
  busy: 'busy',
  'no-answer': 'no-answer',
  failed: 'failed',
  canceled: 'canceled',
};

/**
 * Parses a stream entry; null when it is not a call event (logged and acked: it cannot be
 * stored). `occurrence` numbers identical events of one call (see `call_events.fingerprint`).
 */
export function parseEvent(entry: StreamEntry, occurrence = 0): CoreEvent | null {
  const f = entry.fields;
  if (!f.type || !f.callId || !f.at) return null;
  const at = new Date(f.at);
  if (Number.isNaN(at.getTime())) return null;
  let data: Record<string, unknown> | null = null;
  if (f.data) {
    try {
      const parsed: unknown = JSON.parse(f.data);
      data =
        parsed && typeof parsed === 'object' && !Array.isArray(parsed)
          ? (parsed as Record<string, unknown>)
          : { value: parsed };
    } catch {
      data = { raw: f.data };
    }
  }
  const tMs = f.tMs !== undefined && /^\d{1,9}$/.test(f.tMs) ? Number(f.tMs) : null;
  // The same event reaches us through the global stream and the call's own: same fields, same print.
  const fingerprint = contentHash(f) + (occurrence > 0 ? `#${occurrence}` : '');
  return {
    type: f.type,
    callId: f.callId,
    agentId: f.agentId ?? '',
    protocol: f.protocol ?? '',
    at,
    tMs,
    data,
    fingerprint,
  };
}

function contentHash(f: Record<string, string>): string {
  return createHash('sha256')
    .update(JSON.stringify([f.type, f.callId, f.at, f.tMs ?? null, f.data ?? null]))
    .digest('base64url')
    .slice(0, 32);
}

/**
 * A call's own stream as events, in order, with their stream ids. The n-th repeat of an
 * identical event gets occurrence n, so it is kept apart from the first, which the global
 * stream also carried.
 */
export function parseTimeline(entries: StreamEntry[]): CoreEvent[] {
  const seen = new Map<string, number>();
  const out: CoreEvent[] = [];
  for (const entry of entries) {
    const hash = contentHash(entry.fields);
    const n = seen.get(hash) ?? 0;
    seen.set(hash, n + 1);
    const event = parseEvent(entry, n);
    if (!event) continue;
    const [ms, seq] = entry.id.split('-').map(Number);
    event.streamId = [ms!, seq ?? 0];
    out.push(event);
  }
  return out;
}

/** A non-empty string field of event data, or null. */
function text(value: unknown): string | null {
  return typeof value === 'string' && value.length > 0 ? value : null;
}

/** What an event and core's call record say about a call, for its row. */
interface CallFacts {
  accountId: string | null;
  from: string | null;
  to: string | null;
  direction: 'inbound' | 'outbound' | null;
  providerCallId: string | null;
  campaignId: string | null;
}

function factsOf(e: CoreEvent, core: CoreCallRecord | undefined): CallFacts {
  const d = e.data ?? {};
  return {
    accountId: text(d.accountId),
    from: text(d.from) ?? text(core?.from),
    to: text(d.to) ?? text(core?.to),
    direction: direction(d.direction),
    providerCallId: text(d.providerCallId) ?? text(core?.providerCallId),
    campaignId: text(d.campaignId) ?? text(core?.campaignId),
  };
}

function direction(value: unknown): 'inbound' | 'outbound' | null {
  if (typeof value !== 'string') return null;
  if (value.startsWith('outbound')) return 'outbound';
  if (value.startsWith('inbound')) return 'inbound';
  return null;
}

/**
 * The recorder (docs/architecture.md, "A call, end to end", step 6): consumes core's global event
 * stream in the `recorder` consumer group and writes calls and their events to Postgres, one
 * transaction per batch, acked only after it commits. At-least-once delivery meets idempotent
 * writes (`call_events` dedupes on a fingerprint; call updates only move forward), so a batch
 * written twice, by a retry or by another consumer that claimed it, changes nothing the second
 * time. While Postgres is down the batch is retried with backoff and never acked; if this
 * process dies, another recorder claims its entries once they have been idle `claimIdleMs`.
 * An event Postgres refuses as data (a NUL, a broken surrogate, a constraint) is isolated by
 * splitting the batch and, after a few attempts, moved to `dead_letters` and acked, so it
 * never holds up the events after it (stream-consumer.ts). On `call.ended` the call's own timeline stream is copied too, so the record holds every
 * step, not only the summaries the global stream carries.
 */
export class Recorder {
  readonly group: string;
  readonly consumer: string;
  private readonly consumerLoop: StreamConsumer;
  /** Events written (including copies that turned out to be known already). */
  recorded = 0;

  private readonly timelineTtlMs: number;

  constructor(
    private readonly deps: { sql: Sql; store: Store; log: Logger; campaigns: CampaignService },
    opts: RecorderOptions = {},
  ) {
    this.group = opts.group ?? 'recorder';
    this.consumer = opts.consumer ?? `recorder-${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.timelineTtlMs = opts.timelineTtlMs ?? DEFAULT_TIMELINE_TTL_MS;
    const { group: _group, consumer: _consumer, timelineTtlMs: _ttl, ...loop } = opts;
    this.consumerLoop = new StreamConsumer(
      { store: deps.store, sql: deps.sql, log: deps.log, handle: (entries) => this.write(entries) },
      { ...loop, stream: keys.events, group: this.group, consumer: this.consumer },
    );
  }

  /** Starts the loop (again, after a `stop()`); a second call while running does nothing. */
  start(): void {
    this.consumerLoop.start();
  }

  /** Stops reading; a batch being written is abandoned unacked (another recorder will claim it). */
  async stop(): Promise<void> {
    await this.consumerLoop.stop();
  }

  /** Events Postgres refused as data on every attempt, moved to `dead_letters`. */
  get deadLettered(): number {
    return this.consumerLoop.deadLettered;
  }

  private async write(entries: StreamEntry[]): Promise<void> {
    const events: CoreEvent[] = [];
    for (const entry of entries) {
      const event = parseEvent(entry);
      if (event) events.push(event);
      else
        this.deps.log.warn({ id: entry.id, type: entry.fields.type }, 'recorder dropped a malformed event');
    }
    if (events.length === 0) return;
    // Store reads first, outside the transaction: what core knows of calls that start here.
    const records = new Map<string, CoreCallRecord>();
    const timelines = new Map<string, CoreEvent[]>();
    for (const e of events) {
      if (e.type === 'call.started' && !records.has(e.callId)) {
        records.set(e.callId, await this.callRecord(e.callId));
      }
      if (e.type === 'call.ended' && !timelines.has(e.callId)) {
        timelines.set(e.callId, parseTimeline(await this.deps.store.range(keys.callTimeline(e.callId))));
      }
    }
    await this.deps.sql.begin(async (tx) => {
      for (const e of events) await this.record(tx, e, records.get(e.callId), timelines.get(e.callId));
      // The webhook outbox, in the same transaction: an event recorded is an event delivered.
      await enqueueWebhookEvents(tx, events, timelines);
    });
    this.recorded += events.length;
    // Committed: open call streams on every node read these calls again.
    await callsChanged(
      this.deps.store,
      events.map((e) => e.callId),
    );
    // Written: the calls' own streams have served their purpose. A failure here retries the
    // batch, which changes nothing in Postgres the second time.
    for (const callId of timelines.keys())
      await this.deps.store.expire(keys.callTimeline(callId), this.timelineTtlMs);
  }

  private async callRecord(callId: string): Promise<CoreCallRecord> {
    const raw = await this.deps.store.get(keys.call(callId));
    if (!raw) return {};
    try {
      return JSON.parse(raw) as CoreCallRecord;
    } catch {
      return {};
    }
  }

  private async record(
    tx: Queryable,
    e: CoreEvent,
    core: CoreCallRecord | undefined,
    timeline: CoreEvent[] | undefined,
  ): Promise<void> {
    const provider = PROVIDERS.has(e.protocol) ? e.protocol : null;
    const facts = factsOf(e, core);
    // A call we have not seen belongs to its agent's account, else to the account core named
    // (its number's), else to the account of the number called, else to the deployment's first
    // (bootstrap) account, as `bootstrapAccountId` finds it: built-in agents and unrouted calls
    // are an operator's business too.
    const inserted = await tx`
      insert into calls (id, account_id, agent_id, provider, status, started_at)
      values (${e.callId},
              coalesce((select account_id from agents where id = ${e.agentId}),
                       (select id from accounts where id = ${facts.accountId}),
                       (select account_id from numbers where phone_number = ${facts.to}),
                       (select id from accounts order by created_at, id limit 1)),
              ${e.agentId || null}, ${provider}, 'queued', ${e.at})
      on conflict (id) do nothing
      returning id`;
    await this.insertEvent(tx, e);
    switch (e.type) {
      case 'call.admitted':
      case 'call.refused':
      case 'call.started':
        // What core knows of the call; an account found now beats the fallback the row got
        // from an event that knew less (a provider status of an inbound call).
        await tx`
          update calls set
            account_id = coalesce((select account_id from agents where id = ${e.agentId}),
                                  (select id from accounts where id = ${facts.accountId}),
                                  account_id),
            agent_id = coalesce(agent_id, ${e.agentId || null}),
            direction = coalesce(direction, ${facts.direction}),
            provider = coalesce(provider, ${provider}),
            provider_call_id = coalesce(provider_call_id, ${facts.providerCallId}),
            campaign_id = coalesce(campaign_id, ${facts.campaignId}),
            from_number = coalesce(from_number, ${facts.from}),
            to_number = coalesce(to_number, ${facts.to}),
            updated_at = now()
          where id = ${e.callId}`;
        if (e.type === 'call.started') {
          await tx`
            update calls set
              status = case when status in ('queued', 'ringing') then 'in-progress' else status end,
              answered_at = coalesce(answered_at, ${e.at})
            where id = ${e.callId}`;
        }
        if (e.type === 'call.refused') await this.refused(tx, e, inserted.length > 0);
        return;
      case 'call.ended': {
        for (const step of timeline ?? []) if (step.callId === e.callId) await this.insertEvent(tx, step);
        const reason = typeof e.data?.reason === 'string' ? e.data.reason : null;
        const rows = await tx<
          { type: string; at: Date; t_ms: number | null; data: Record<string, unknown> | null }[]
        >`
          select type, at, t_ms, data from call_events where call_id = ${e.callId}`;
        const recorded: RecordedEvent[] = rows.map((r) => ({
          type: r.type,
          at: r.at,
          tMs: r.t_ms,
          data: r.data,
        }));
        // A late end beats the verdict control gave a call it had not heard from.
        await tx`
          update calls set
            status = case
              when status = any(${LIVE}::text[]) or end_reason = any(${PROVISIONAL_END_REASONS}::text[])
              then ${reason === 'error' ? 'failed' : 'completed'} else status end,
            ended_at = case when end_reason = any(${PROVISIONAL_END_REASONS}::text[])
              then ${e.at} else coalesce(ended_at, ${e.at}) end,
            end_reason = coalesce(${reason}, end_reason),
            latency = ${tx.json(latencySummary(recorded) as never)},
            updated_at = now()
          where id = ${e.callId}`;
        await this.deps.campaigns.applyCallOutcome(tx, e.callId, 'completed');
        return;
      }
      case 'call.status': {
        const reported = typeof e.data?.status === 'string' ? PROVIDER_STATUS[e.data.status] : undefined;
        if (!reported) return;
        const providerCallId = typeof e.data?.providerCallId === 'string' ? e.data.providerCallId : null;
        if (reported === 'ringing' || reported === 'in-progress') {
          await tx`
            update calls set
              status = case
                when status = 'queued' or (status = 'ringing' and ${reported} = 'in-progress') then ${reported}
                else status end,
              answered_at = case when ${reported} = 'in-progress' then coalesce(answered_at, ${e.at}) else answered_at end,
              provider_call_id = coalesce(provider_call_id, ${providerCallId}),
              updated_at = now()
            where id = ${e.callId}`;
          return;
        }
        // Admitted (core still had it on record at its final status) and no session ever
        // started: the caller heard nothing. The campaign still gets the provider's outcome.
        const neverStreamed = e.data?.admitted === true && !(await this.hasStarted(tx, e.callId));
        const status = neverStreamed ? 'failed' : reported;
        const reason = neverStreamed ? 'never_streamed' : reported;
        await tx`
          update calls set
            status = case when status = any(${LIVE}::text[]) or end_reason = 'lost'
              then ${status} else status end,
            ended_at = case when end_reason = 'lost' then ${e.at} else coalesce(ended_at, ${e.at}) end,
            end_reason = case when end_reason = 'lost' then ${reason} else coalesce(end_reason, ${reason}) end,
            provider_call_id = coalesce(provider_call_id, ${providerCallId}),
            from_number = coalesce(from_number, ${facts.from}),
            to_number = coalesce(to_number, ${facts.to}),
            updated_at = now()
          where id = ${e.callId}`;
        await this.deps.campaigns.applyCallOutcome(tx, e.callId, reported);
        return;
      }
      default:
        return;
    }
  }

  /**
   * A call core refused: a row still waiting for news (or the one this event created) is
   * closed as `refused`, the reason its end reason, and its campaign contact settled. A
   * replayed webhook of an ended call (`ended`) never touches a row that already existed.
   */
  private async refused(tx: Queryable, e: CoreEvent, created: boolean): Promise<void> {
    const reason = text(e.data?.reason) ?? 'refused';
    if (reason === 'ended' && !created) return;
    const closed = await tx`
      update calls set
        status = 'refused',
        ended_at = coalesce(ended_at, ${e.at}),
        end_reason = ${reason},
        updated_at = now()
      where id = ${e.callId} and status in ('queued', 'ringing')
      returning id`;
    const outcome = REFUSAL_OUTCOME[reason];
    if (closed.length > 0 && outcome) await this.deps.campaigns.applyCallOutcome(tx, e.callId, outcome);
  }

  private async hasStarted(tx: Queryable, callId: string): Promise<boolean> {
    const [row] = await tx<{ started: boolean }[]>`
      select exists (select 1 from call_events where call_id = ${callId} and type = 'call.started') as started`;
    return row?.started === true;
  }

  private insertEvent(tx: Queryable, e: CoreEvent): Promise<void> {
    return insertCallEvent(tx, e);
  }
}

/**
 * The public events (core/events/catalogue.ts) of a batch, with a delivery for every endpoint
 * that wants each: the steps a call's own stream holds are known at its `call.ended`, so they
 * are enqueued then, before the end. Ids derive from content, so a batch written twice (and a
 * step read from both streams) enqueues each event once.
 */
async function enqueueWebhookEvents(
  tx: Queryable,
  events: CoreEvent[],
  timelines: Map<string, CoreEvent[]>,
): Promise<void> {
  if (!(await anyEndpointEnabled(tx))) return;
  const seen = new Set<string>();
  const enqueue = async (step: CoreEvent, steps: CoreEvent[] = []) => {
    const event = publicEventOf(step, steps);
    if (!event || seen.has(event.id)) return;
    seen.add(event.id);
    await enqueueCallEvent(tx, event);
  };
  for (const e of events) {
    const steps =
      e.type === 'call.ended' ? (timelines.get(e.callId) ?? []).filter((s) => s.callId === e.callId) : [];
    for (const step of steps) if (step.type !== 'call.ended') await enqueue(step, steps);
    await enqueue(e, steps);
  }
}

/**
 * Writes one event of a call whose row exists; a copy already there (same fingerprint) only
 * gains the stream position it lacked. Shared with the orphan sweeper, which keeps the steps
 * of a call it closes.
 */
export async function insertCallEvent(tx: Queryable, e: CoreEvent): Promise<void> {
  const [streamMs, streamSeq] = e.streamId ?? [null, null];
  await tx`
    insert into call_events (call_id, fingerprint, type, at, t_ms, data, stream_ms, stream_seq)
    values (${e.callId}, ${e.fingerprint}, ${e.type}, ${e.at}, ${e.tMs},
            ${e.data ? tx.json(e.data as never) : null}, ${streamMs}, ${streamSeq})
    on conflict (call_id, fingerprint) do update set
      stream_ms = coalesce(call_events.stream_ms, excluded.stream_ms),
      stream_seq = coalesce(call_events.stream_seq, excluded.stream_seq)`;
}
