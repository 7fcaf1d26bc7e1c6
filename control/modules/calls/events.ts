import { randomUUID } from 'node:crypto';
import { Elysia } from 'elysia';
import type { Logger } from '../../../core/observability/index.ts';
import { keys, type Store, type Unsubscribe } from '../../../core/store/index.ts';
import { type ApiKeyAuth, bearerSecurity } from '../../auth/index.ts';
import type { Sql } from '../../db/index.ts';
import { ApiError, errorModels, errorResponses, notFound, type RouteErrors } from '../../errors.ts';
import { parseEvent } from '../../workers/recorder.ts';
import type { Principal } from '../keys/service.ts';
import { CALL_CHANGES_CHANNEL } from './changes.ts';
import { CallParams } from './model.ts';
import { type CallRow, toCall } from './service.ts';

/**
 * Live calls over server-sent events: `GET /v1/calls/events` streams the account's calls as
 * they change, `GET /v1/calls/{id}/events` one call and its timeline as it grows.
 *
 * Every writer of `calls` rows names the calls it changed on a Store channel once its
 * transaction has committed (changes.ts). Each control node subscribes to that channel while it
 * has a stream open, reads the changed rows of the accounts its streams belong to, and hands
 * each stream its own account's rows only: what a stream sends is always what Postgres holds,
 * on whichever node the change was made. A call's stream also reads the steps of the call's
 * own Store stream (core writes every step there, the summary steps to the global stream the
 * recorder records), so its transcript grows while the call lives.
 */

export interface CallStreamOptions {
  /**
   * A comment line this often keeps proxies from closing an idle stream; at the same beat the
   * stream's slot is renewed and its key checked (a revoked key's streams end). Default 15 s.
   */
  heartbeatMs?: number;
  /** Streams one API key may hold open at once, across every control node. Default 10. */
  maxPerKey?: number;
  /** While a call lives, its stream reads new steps of the call's Store stream this often. Default 500 ms. */
  stepsEveryMs?: number;
  /** Bytes a client may leave unread before its stream is ended (it reconnects). Default 1 MB. */
  maxUnreadBytes?: number;
}

/** A call row with `updated_at` in microseconds since the epoch (text: a bigint). */
type ChangedRow = CallRow & { updated_us: string };

/** A timeline event as the stream sends it (`CallEvent` of `GET /v1/calls/{id}`). */
interface TimelineEvent {
  type: string;
  at: string;
  tMs: number | null;
  data: Record<string, unknown> | null;
}

const LIVE = new Set(['queued', 'ringing', 'in-progress']);

/** Replaying from a `Last-Event-ID` starts this much earlier: a change is stamped when its transaction began. */
const RESUME_OVERLAP_US = 10_000_000n;
/** More changes than this since a `Last-Event-ID` and the client is told to list again instead. */
const RESUME_MAX = 500;
/** Calls a list stream remembers having sent (to skip a change that changed nothing it shows). */
const MAX_REMEMBERED = 10_000;

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  // nginx and others: pass each event on at once instead of buffering the response.
  'x-accel-buffering': 'no',
};

const encoder = new TextEncoder();

/** Whether `pathname` is one of the call streams (they stay open: no idle timeout applies). */
export function isCallStreamPath(pathname: string): boolean {
  return /^\/v1\/calls\/(?:[^/]+\/)?events\/?$/.test(pathname);
}

/** One server-sent event; `data` is one line of JSON. */
function frame(event: string, data: unknown, id?: string): string {
  return `${id ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** The Store semaphore counting a key's open streams. */
const slotKey = (keyId: string) => `event-streams:${keyId}`;

/** The stream id right after `id`, as the first id of an inclusive range read. */
function afterId(id: string): string {
  const [ms, seq] = id.split('-');
  return `${ms}-${Number(seq ?? 0) + 1}`;
}

/** 429 for a key with every stream slot taken. */
function tooManyStreams(count: number, limit: number, retryAfterSec: number): ApiError {
  return new ApiError(
    429,
    'at_capacity',
    `this API key has ${count} event streams open, its limit of ${limit}; close one, or retry when one ends`,
    { scope: 'event_streams', count, limit },
    { 'retry-after': String(retryAfterSec) },
  );
}

/** One client's stream: its slot, its heartbeat, and the events it has still to send, in order. */
abstract class EventStream {
  readonly holder = `stream-${randomUUID()}`;
  readonly body: ReadableStream<Uint8Array>;
  closed = false;
  private controller: ReadableStreamDefaultController<Uint8Array> | null = null;
  private chain: Promise<void> = Promise.resolve();
  private heartbeat: ReturnType<typeof setInterval> | null = null;

  constructor(
    protected readonly hub: CallStreams,
    readonly principal: Principal,
  ) {
    this.body = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.controller = controller;
        },
        cancel: () => this.close(),
      },
      new ByteLengthQueuingStrategy({ highWaterMark: 64 * 1024 }),
    );
  }

  /** Whether a change of this call concerns the stream (its account's rows only reach it). */
  abstract wants(callId: string): boolean;
  /** Rows of the stream's account that changed. */
  abstract changed(rows: ChangedRow[]): void;
  /** What the stream sends first, before any change. */
  protected abstract opening(): Promise<void>;
  /** Stops what the stream runs besides its heartbeat. */
  protected abstract stopped(): void;

  start(): void {
    if (this.closed) return;
    // A first line at once, so the client has the response (and its headers) now.
    this.write('retry: 2000\n: open\n\n');
    this.run(() => this.opening());
    this.heartbeat = this.hub.every(() => this.beat());
  }

  /** Runs `task` after the ones before it; a task that fails ends the stream (its client reconnects). */
  protected run(task: () => Promise<void>): void {
    this.chain = this.chain.then(async () => {
      if (this.closed) return;
      try {
        await task();
      } catch (err) {
        this.hub.failed(this, err);
        await this.close();
      }
    });
  }

  protected send(event: string, data: unknown, id?: string): void {
    this.write(frame(event, data, id));
  }

  private write(text: string): void {
    if (this.closed || !this.controller) return;
    try {
      this.controller.enqueue(encoder.encode(text));
    } catch {
      void this.close();
      return;
    }
    // A client that stopped reading: end its stream rather than buffer for it.
    if ((this.controller.desiredSize ?? 0) < -this.hub.maxUnreadBytes) void this.close();
  }

  private beat(): void {
    this.write(': heartbeat\n\n');
    this.run(async () => {
      if (!(await this.hub.keepSlot(this))) await this.close();
    });
  }

  /** Ends the stream and frees what it holds; safe to call more than once. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.heartbeat) this.hub.cancel(this.heartbeat);
    this.stopped();
    try {
      this.controller?.close();
    } catch {
      // Already closed or cancelled by the client.
    }
    await this.hub.leave(this);
  }
}

/** `GET /v1/calls/events`: every call of the account, each time it changes. */
class CallsStream extends EventStream {
  /** Call id → the change (`updated_us`) last sent for it. */
  private readonly sent = new Map<string, string>();

  constructor(
    hub: CallStreams,
    principal: Principal,
    private readonly resumeFrom: bigint | null,
  ) {
    super(hub, principal);
  }

  wants(): boolean {
    return true;
  }

  changed(rows: ChangedRow[]): void {
    this.run(async () => this.sendRows(rows));
  }

  protected async opening(): Promise<void> {
    if (this.resumeFrom === null) return;
    const since = this.resumeFrom - RESUME_OVERLAP_US;
    const rows = await this.hub.changedSince(this.principal.accountId, since, RESUME_MAX + 1);
    if (rows.length > RESUME_MAX) {
      this.send('reset', {
        reason: `more than ${RESUME_MAX} calls changed since that event; list them again`,
      });
      return;
    }
    this.sendRows(rows);
  }

  protected stopped(): void {}

  private sendRows(rows: ChangedRow[]): void {
    const ordered = [...rows].sort((a, b) => (BigInt(a.updated_us) < BigInt(b.updated_us) ? -1 : 1));
    for (const row of ordered) {
      if (this.sent.get(row.id) === row.updated_us) continue;
      if (this.sent.size >= MAX_REMEMBERED) this.sent.clear();
      this.sent.set(row.id, row.updated_us);
      this.send('call', toCall(row), row.updated_us);
    }
  }
}

/** `GET /v1/calls/{id}/events`: one call, then each step of its timeline as it is written. */
class CallStream extends EventStream {
  private updatedUs = '';
  private live = false;
  /** Fingerprints (as the recorder computes them) of the timeline events sent. */
  private readonly sentEvents = new Set<string>();
  /** How often each event's content came so far in the call's Store stream. */
  private readonly occurrences = new Map<string, number>();
  /** Where the next read of the call's Store stream starts. */
  private nextStepId = '-';
  private stepTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    hub: CallStreams,
    principal: Principal,
    readonly callId: string,
  ) {
    super(hub, principal);
  }

  wants(callId: string): boolean {
    return callId === this.callId;
  }

  changed(rows: ChangedRow[]): void {
    this.run(async () => {
      for (const row of rows) this.sendCall(row);
      await this.syncTimeline(true);
    });
  }

  protected async opening(): Promise<void> {
    const row = await this.hub.callRow(this.principal.accountId, this.callId);
    if (!row) {
      await this.close();
      return;
    }
    this.sendCall(row);
    await this.syncTimeline(true);
  }

  protected stopped(): void {
    if (this.stepTimer) this.hub.cancel(this.stepTimer);
    this.stepTimer = null;
  }

  private sendCall(row: ChangedRow): void {
    if (row.updated_us === this.updatedUs) return;
    this.updatedUs = row.updated_us;
    this.live = LIVE.has(row.status);
    this.send('call', toCall(row), row.updated_us);
  }

  /**
   * Sends the timeline events not sent yet, oldest first: the steps of the call's Store stream
   * and, with `recorded`, what Postgres holds (events only the global stream carries, and the
   * whole timeline once the call's Store stream has expired). An event read from both is sent once.
   */
  private async syncTimeline(recorded: boolean): Promise<void> {
    const fresh: TimelineEvent[] = [];
    const entries = await this.hub.steps(this.callId, this.nextStepId);
    for (const entry of entries) {
      this.nextStepId = afterId(entry.id);
      const event = parseEvent(entry);
      if (!event) continue;
      // The n-th repeat of the same content is its own event, as the recorder numbers it.
      const n = this.occurrences.get(event.fingerprint) ?? 0;
      this.occurrences.set(event.fingerprint, n + 1);
      const fingerprint = n > 0 ? `${event.fingerprint}#${n}` : event.fingerprint;
      if (event.callId !== this.callId || this.sentEvents.has(fingerprint)) continue;
      this.sentEvents.add(fingerprint);
      fresh.push({ type: event.type, at: event.at.toISOString(), tMs: event.tMs, data: event.data });
    }
    if (recorded) {
      for (const e of await this.hub.recordedEvents(this.callId)) {
        if (this.sentEvents.has(e.fingerprint)) continue;
        this.sentEvents.add(e.fingerprint);
        fresh.push({ type: e.type, at: e.at.toISOString(), tMs: e.t_ms, data: e.data });
      }
    }
    // Stable: events of the same instant keep the order they were read in.
    fresh.sort((a, b) => a.at.localeCompare(b.at) || (a.tMs ?? -1) - (b.tMs ?? -1));
    for (const event of fresh) this.send('timeline', event);
    this.scheduleSteps();
  }

  private scheduleSteps(): void {
    if (this.stepTimer || !this.live || this.closed) return;
    this.stepTimer = this.hub.after(this.hub.stepsEveryMs, () => {
      this.stepTimer = null;
      this.run(() => this.syncTimeline(false));
    });
  }
}

/**
 * The open streams of this control node, and the one Store subscription that feeds them while
 * any is open. `close()` ends them all (at shutdown, so the server need not wait for them).
 */
export class CallStreams {
  readonly heartbeatMs: number;
  readonly maxPerKey: number;
  readonly stepsEveryMs: number;
  readonly maxUnreadBytes: number;
  private readonly streams = new Set<EventStream>();
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private subscription: Promise<Unsubscribe> | null = null;
  private dispatching: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: { sql: Sql; store: Store; log: Logger },
    opts: CallStreamOptions = {},
  ) {
    this.heartbeatMs = opts.heartbeatMs ?? 15_000;
    this.maxPerKey = opts.maxPerKey ?? 10;
    this.stepsEveryMs = opts.stepsEveryMs ?? 500;
    this.maxUnreadBytes = opts.maxUnreadBytes ?? 1024 * 1024;
  }

  /** Streams open on this node. */
  get open(): number {
    return this.streams.size;
  }

  /** Timers the open streams hold (heartbeats, step reads): zero once every stream has ended. */
  get activeTimers(): number {
    return this.timers.size;
  }

  /** Whether this node is subscribed to the Store's call changes (only while a stream is open). */
  get subscribed(): boolean {
    return this.subscription !== null;
  }

  /** The account's call changes; from `lastEventId` (an id this stream sent) when given. */
  openCalls(principal: Principal, lastEventId: string | null): Promise<Response> {
    const resumeFrom = lastEventId && /^\d{1,19}$/.test(lastEventId) ? BigInt(lastEventId) : null;
    return this.admit(new CallsStream(this, principal, resumeFrom));
  }

  /** One call of the account and its timeline; 404 when the account has no such call. */
  async openCall(principal: Principal, callId: string): Promise<Response> {
    if (!(await this.callRow(principal.accountId, callId))) throw notFound('call', callId);
    return this.admit(new CallStream(this, principal, callId));
  }

  /** Ends every stream of this node. */
  async close(): Promise<void> {
    await Promise.all([...this.streams].map((s) => s.close()));
  }

  private async admit(stream: EventStream): Promise<Response> {
    const { store } = this.deps;
    const key = slotKey(stream.principal.keyId);
    const slot = await store.acquire([{ key, limit: this.maxPerKey }], stream.holder, this.slotTtlMs);
    if (!slot.ok) throw tooManyStreams(slot.count, slot.limit, Math.ceil(this.heartbeatMs / 1000));
    this.streams.add(stream);
    try {
      await this.subscribe();
    } catch (err) {
      await stream.close();
      throw err;
    }
    stream.start();
    return new Response(stream.body, { headers: SSE_HEADERS });
  }

  /** A slot outlives a node that died holding it by at most this long. */
  private get slotTtlMs(): number {
    return this.heartbeatMs * 3;
  }

  private async subscribe(): Promise<void> {
    if (!this.subscription) {
      this.subscription = this.deps.store.subscribe(CALL_CHANGES_CHANNEL, (m) => this.received(m));
    }
    const subscription = this.subscription;
    try {
      await subscription;
    } catch (err) {
      if (this.subscription === subscription) this.subscription = null;
      throw err;
    }
  }

  /** Called by a stream as it ends: frees its slot, and the subscription with the last stream. */
  async leave(stream: EventStream): Promise<void> {
    if (!this.streams.delete(stream)) return;
    const { store, log } = this.deps;
    await store
      .release([slotKey(stream.principal.keyId)], stream.holder)
      .catch((err: unknown) =>
        log.warn({ err: (err as Error).message }, 'could not free an event stream slot'),
      );
    if (this.streams.size > 0 || !this.subscription) return;
    const subscription = this.subscription;
    this.subscription = null;
    try {
      await (await subscription)();
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'could not unsubscribe from call changes');
    }
  }

  /**
   * At each heartbeat: renews the stream's slot (taking it again if it lapsed while the Store
   * was out of reach) and checks its key. False when the key was revoked: the stream ends.
   */
  async keepSlot(stream: EventStream): Promise<boolean> {
    const { sql, store, log } = this.deps;
    const { keyId } = stream.principal;
    try {
      const [active] = await sql<{ id: string }[]>`
        select id from api_keys where id = ${keyId} and revoked_at is null`;
      if (!active) return false;
      const key = slotKey(keyId);
      if (!(await store.renew([key], stream.holder, this.slotTtlMs))) {
        await store.acquire([{ key, limit: this.maxPerKey }], stream.holder, this.slotTtlMs);
      }
    } catch (err) {
      // Postgres or the Store out of reach for a moment: the stream goes on, checked next beat.
      log.warn({ holder: stream.holder, err: (err as Error).message }, 'event stream heartbeat check failed');
    }
    return true;
  }

  failed(stream: EventStream, err: unknown): void {
    this.deps.log.warn(
      { holder: stream.holder, err: (err as Error)?.message ?? String(err) },
      'event stream ended: could not read what changed',
    );
  }

  private received(message: string): void {
    let ids: unknown;
    try {
      ids = JSON.parse(message);
    } catch {
      return;
    }
    if (!Array.isArray(ids)) return;
    const callIds = ids.filter((id): id is string => typeof id === 'string');
    if (callIds.length === 0) return;
    this.dispatching = this.dispatching
      .then(() => this.dispatch(callIds))
      .catch((err: unknown) =>
        this.deps.log.error({ err: (err as Error).message }, 'could not hand call changes to their streams'),
      );
  }

  /** Reads the changed calls of the accounts that have streams here and hands each stream its own. */
  private async dispatch(callIds: string[]): Promise<void> {
    const streams = [...this.streams].filter((s) => callIds.some((id) => s.wants(id)));
    if (streams.length === 0) return;
    const accounts = [...new Set(streams.map((s) => s.principal.accountId))];
    let rows: ChangedRow[];
    try {
      rows = await this.deps.sql<ChangedRow[]>`
        select *, (extract(epoch from updated_at) * 1000000)::bigint::text as updated_us
        from calls
        where id = any(${callIds}::text[]) and account_id = any(${accounts}::text[])`;
    } catch (err) {
      // The change cannot be read: these streams would miss it, so they end and their clients
      // reconnect and list again.
      for (const s of streams) {
        this.failed(s, err);
        void s.close();
      }
      return;
    }
    for (const s of streams) {
      const mine = rows.filter((r) => r.account_id === s.principal.accountId && s.wants(r.id));
      if (mine.length > 0) s.changed(mine);
    }
  }

  async callRow(accountId: string, callId: string): Promise<ChangedRow | undefined> {
    const [row] = await this.deps.sql<ChangedRow[]>`
      select *, (extract(epoch from updated_at) * 1000000)::bigint::text as updated_us
      from calls where id = ${callId} and account_id = ${accountId}`;
    return row;
  }

  /** The account's calls changed after `sinceUs`, oldest change first, at most `limit`. */
  changedSince(accountId: string, sinceUs: bigint, limit: number): Promise<ChangedRow[]> {
    return this.deps.sql<ChangedRow[]>`
      select *, (extract(epoch from updated_at) * 1000000)::bigint::text as updated_us
      from calls
      where account_id = ${accountId}
        and updated_at > timestamptz 'epoch' + ${sinceUs.toString()}::float8 * interval '1 microsecond'
      order by updated_at, id
      limit ${limit}`;
  }

  steps(callId: string, from: string) {
    return this.deps.store.range(keys.callTimeline(callId), from);
  }

  recordedEvents(callId: string) {
    return this.deps.sql<
      {
        fingerprint: string;
        type: string;
        at: Date;
        t_ms: number | null;
        data: Record<string, unknown> | null;
      }[]
    >`
      select fingerprint, type, at, t_ms, data from call_events
      where call_id = ${callId}
      order by at, t_ms nulls first, stream_ms nulls last, stream_seq, fingerprint`;
  }

  /** A heartbeat timer, counted until cancelled. */
  every(fn: () => void): ReturnType<typeof setInterval> {
    const timer = setInterval(fn, this.heartbeatMs);
    this.timers.add(timer);
    return timer;
  }

  /** A one-off timer, counted until it fires or is cancelled. */
  after(ms: number, fn: () => void): ReturnType<typeof setTimeout> {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
    return timer;
  }

  cancel(timer: ReturnType<typeof setTimeout>): void {
    clearTimeout(timer);
    clearInterval(timer);
    this.timers.delete(timer);
  }
}

/**
 * A stream's documentation. Its 200 is `text/event-stream`, which Elysia's `response` map would
 * document as JSON: the responses are given here instead, the errors' examples filled in by the
 * docs module like every route's (control/modules/docs/error-examples.ts).
 */
const detail = (summary: string, description: string, errors: RouteErrors) => ({
  summary,
  description,
  tags: ['calls'],
  security: bearerSecurity,
  responses: {
    200: {
      description: 'A stream of server-sent events, open until the client closes it.',
      content: {
        'text/event-stream': {
          schema: {
            type: 'string' as const,
            description: 'Server-sent events: `event:` names it, `data:` is one line of JSON.',
          },
        },
      },
    },
    ...errorResponses({ 401: [], 503: [], ...errors }),
  },
});

/** 429 past the key's streams, beside the rate limits every route has. */
const TOO_MANY_STREAMS = [
  {
    summary: 'Every stream this key may hold is open',
    code: 'at_capacity',
    message: 'this API key has 10 event streams open, its limit of 10; close one, or retry when one ends',
    details: { scope: 'event_streams', count: 10, limit: 10 },
  },
];

const READING =
  'Read it with `fetch()` and the key in `Authorization` (a browser’s EventSource cannot send the header; never put a key in a URL). A comment line comes every 15 s so proxies keep the stream open; a revoked key’s streams end at the next one. A key may hold 10 streams open at once (429 `at_capacity` past that).';

/** `/v1/calls/events` and `/v1/calls/{id}/events`: the account's calls as they change, over server-sent events. */
export const callEvents = (auth: ApiKeyAuth, streams: CallStreams) =>
  new Elysia({ name: 'sipai/call-events' })
    .use(errorModels)
    .use(auth)
    .get(
      '/calls/events',
      ({ principal, request }) => streams.openCalls(principal, request.headers.get('last-event-id')),
      {
        detail: {
          ...detail(
            'Stream the account’s calls as they change',
            `Server-sent events: \`event: call\` with the call (as \`GET /v1/calls\` lists it) each time one of the account’s calls is placed, reaches core, changes status or ends, on any control node. Its \`id\` is the time of the change in microseconds: reconnect with it as \`Last-Event-ID\` to be sent the calls changed since (from a few seconds before, so a call may come twice; \`event: reset\` when more than ${RESUME_MAX} changed, and the client should list again). ${READING}`,
            { 429: TOO_MANY_STREAMS },
          ),
          parameters: [
            {
              name: 'Last-Event-ID',
              in: 'header' as const,
              required: false,
              description:
                'The `id` of the last event received: the calls changed since are sent first. A value that is not such an id is ignored.',
              schema: { type: 'string' as const, pattern: '^[0-9]{1,19}$' },
              example: '1767605400000000',
            },
          ],
        },
      },
    )
    .get('/calls/:id/events', ({ principal, params }) => streams.openCall(principal, params.id), {
      params: CallParams,
      detail: detail(
        'Stream a call and its timeline as they change',
        `Server-sent events: first \`event: call\` with the call and one \`event: timeline\` per event of its timeline so far (as \`GET /v1/calls/{id}\` has them), oldest first; then the call again whenever it changes, and each new timeline event as core writes it (the caller’s and the agent’s words, turns and their latency, the end). A reconnecting client is sent everything again. ${READING}`,
        { 404: [], 429: TOO_MANY_STREAMS },
      ),
    });
