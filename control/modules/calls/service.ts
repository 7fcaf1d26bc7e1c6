import type { CallCommand } from '../../../core/session/commands.ts';
import type { Store } from '../../../core/store/index.ts';
import { keys } from '../../../core/store/index.ts';
import type { OriginateResult } from '../../../core/telephony/index.ts';
import type { Queryable, Sql } from '../../db/index.ts';
import { ApiError, invalidField, notFound } from '../../errors.ts';
import { newId } from '../../ids.ts';
import { toPage } from '../../pagination.ts';
import { callsChanged } from './changes.ts';
import type { Call, CallDetail, CallListQuery, CallStatus, CreateCallBody } from './model.ts';
import type { OutboundDialing, OutboundProvider } from './outbound.ts';
import { latencySummary, type RecordedEvent, transcriptOf } from './timeline.ts';

export interface CallRow {
  id: string;
  account_id: string | null;
  provider: Call['provider'];
  provider_call_id: string | null;
  agent_id: string | null;
  campaign_id: string | null;
  direction: Call['direction'];
  from_number: string | null;
  to_number: string | null;
  status: CallStatus;
  started_at: Date;
  answered_at: Date | null;
  ended_at: Date | null;
  end_reason: string | null;
  /** `started_at` in microseconds since the epoch (text: a bigint), for exact cursors. */
  started_us?: string;
}

interface EventRow {
  type: string;
  at: Date;
  t_ms: number | null;
  data: Record<string, unknown> | null;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function toCall(row: CallRow): Call {
  return {
    id: row.id,
    provider: row.provider,
    providerCallId: row.provider_call_id,
    agentId: row.agent_id,
    campaignId: row.campaign_id,
    direction: row.direction,
    from: row.from_number,
    to: row.to_number,
    status: row.status,
    startedAt: row.started_at.toISOString(),
    answeredAt: iso(row.answered_at),
    endedAt: iso(row.ended_at),
    endReason: row.end_reason,
  };
}

/** A page cursor: the last row's `(started_at µs, id)`, opaque to clients. */
function encodeCursor(row: CallRow): string {
  return Buffer.from(`${row.started_us}.${row.id}`, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): { us: string; id: string } {
  const m = /^(\d{1,19})\.(.+)$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw invalidField('cursor', 'is not a cursor this API returned');
  return { us: m[1]!, id: m[2]! };
}

/** An outbound call we placed (or tried to), as `recordPlacedCall` writes it. */
export interface PlacedCall {
  id: string;
  accountId: string;
  provider: OutboundProvider;
  providerCallId: string | null;
  agentId: string;
  campaignId: string | null;
  from: string;
  to: string;
  startedAt: Date;
  /** `queued` once the provider accepted it, `failed` when it refused. */
  status: 'queued' | 'failed';
  endReason?: string;
}

/**
 * Writes the row of a call we placed. The recorder may have created the row from core's events
 * already (a fast answer), so this fills in what it could not know and keeps the status it set.
 */
export async function recordPlacedCall(db: Queryable, call: PlacedCall): Promise<CallRow> {
  const endedAt = call.status === 'failed' ? call.startedAt : null;
  const [row] = await db<CallRow[]>`
    insert into calls (id, account_id, provider, provider_call_id, agent_id, campaign_id, direction,
                       from_number, to_number, status, started_at, ended_at, end_reason)
    values (${call.id}, ${call.accountId}, ${call.provider}, ${call.providerCallId}, ${call.agentId},
            ${call.campaignId}, 'outbound', ${call.from}, ${call.to}, ${call.status}, ${call.startedAt},
            ${endedAt}, ${call.endReason ?? null})
    on conflict (id) do update set
      account_id = coalesce(calls.account_id, excluded.account_id),
      provider = excluded.provider,
      provider_call_id = coalesce(excluded.provider_call_id, calls.provider_call_id),
      agent_id = excluded.agent_id,
      campaign_id = coalesce(excluded.campaign_id, calls.campaign_id),
      direction = 'outbound',
      from_number = excluded.from_number,
      to_number = excluded.to_number,
      started_at = least(calls.started_at, excluded.started_at),
      updated_at = now()
    returning *`;
  return row!;
}

/** 429 for a call that would exceed a concurrency limit: which one, and how full it is. */
export function atCapacity(result: Extract<OriginateResult, { code: 'at_capacity' }>): ApiError {
  const { scope, count, limit } = result;
  const message =
    scope === 'originated'
      ? `the limit of ${limit} API-originated live calls (TELEPHONY_OUTBOUND_MAX_CONCURRENCY, MAX_CONCURRENT_CALLS) is reached (${count} live); retry when calls end`
      : `the ${scope} limit of ${limit} live calls is reached (${count} live); retry when calls end`;
  return new ApiError(429, 'at_capacity', message, { scope, count, limit }, { 'retry-after': '5' });
}

/** 502 carrying what the provider said (its status and its own error code). */
export function providerRefused(result: Extract<OriginateResult, { code: 'provider_error' }>): ApiError {
  const e = result.error;
  return new ApiError(502, 'provider_error', e.message, {
    provider: e.provider,
    kind: e.kind,
    status: e.status ?? null,
    providerCode: e.code ?? null,
    retryable: e.retryable,
  });
}

/** Why a refused call ended, for its row: `provider_error: jambonz 400`, `… twilio 21211`. */
export function refusalReason(result: Extract<OriginateResult, { code: 'provider_error' }>): string {
  const e = result.error;
  return `provider_error: ${e.provider} ${e.code ?? e.status ?? e.kind}`;
}

/** How long a placed call's context (its variables) waits for its stream: ringing, answering. */
const CALL_CONTEXT_TTL_MS = 60 * 60 * 1000;

/**
 * Calls of an account: lists and details from Postgres (written by the recorder and by
 * `create`), outbound calls through core's `originateCall`, live commands over the Store.
 */
export class CallService {
  constructor(
    private readonly sql: Sql,
    private readonly store: Store,
    private readonly outbound: OutboundDialing,
  ) {}

  async list(accountId: string, q: CallListQuery) {
    const sql = this.sql;
    const limit = q.limit ?? 20;
    const cursor = q.cursor ? decodeCursor(q.cursor) : null;
    const since = q.since ? parseTime('since', q.since) : null;
    const until = q.until ? parseTime('until', q.until) : null;
    const rows = await sql<CallRow[]>`
      select *, (extract(epoch from started_at) * 1000000)::bigint::text as started_us
      from calls
      where account_id = ${accountId}
        ${q.status ? sql`and status = ${q.status}` : sql``}
        ${q.agentId ? sql`and agent_id = ${q.agentId}` : sql``}
        ${q.campaignId ? sql`and campaign_id = ${q.campaignId}` : sql``}
        ${q.direction ? sql`and direction = ${q.direction}` : sql``}
        ${since ? sql`and started_at >= ${since}` : sql``}
        ${until ? sql`and started_at < ${until}` : sql``}
        ${
          cursor
            ? sql`and (started_at, id) <
                  (timestamptz 'epoch' + ${cursor.us}::float8 * interval '1 microsecond', ${cursor.id})`
            : sql``
        }
      order by started_at desc, id desc
      limit ${limit + 1}`;
    return toPage(rows, limit, toCall, encodeCursor);
  }

  private async row(accountId: string, id: string): Promise<CallRow> {
    const [row] = await this.sql<CallRow[]>`
      select * from calls where id = ${id} and account_id = ${accountId}`;
    if (!row) throw notFound('call', id);
    return row;
  }

  async get(accountId: string, id: string): Promise<CallDetail> {
    const row = await this.row(accountId, id);
    const rows = await this.sql<EventRow[]>`
      select type, at, t_ms, data from call_events
      where call_id = ${id}
      order by at, t_ms nulls first, stream_ms nulls last, stream_seq, fingerprint`;
    const events: RecordedEvent[] = rows.map((e) => ({ type: e.type, at: e.at, tMs: e.t_ms, data: e.data }));
    return {
      ...toCall(row),
      timeline: events.map((e) => ({ type: e.type, at: e.at.toISOString(), tMs: e.tMs, data: e.data })),
      transcript: transcriptOf(events),
      latency: latencySummary(events),
      recordingUrl: null,
    };
  }

  /**
   * Places an outbound call: the agent (and campaign) must be this account's; the leases are
   * taken before the provider is asked (429 when a limit is full, nothing placed); a refusal is
   * a 502 with the provider's own code, and the attempt is kept as a failed call. `variables`
   * (an inbound trigger's) reach the agent like a campaign contact's.
   */
  async create(
    accountId: string,
    body: CreateCallBody,
    opts: { variables?: Record<string, string> } = {},
  ): Promise<Call> {
    const [agent] = await this.sql<{ config: { maxConcurrentCalls?: number } }[]>`
      select config from agents where id = ${body.agentId} and account_id = ${accountId}`;
    if (!agent) throw invalidField('agentId', `no agent ${body.agentId} in this account`);
    let campaignMax: number | undefined;
    if (body.campaignId) {
      const [campaign] = await this.sql<{ max_concurrent_calls: number }[]>`
        select max_concurrent_calls from campaigns
        where id = ${body.campaignId} and account_id = ${accountId}`;
      if (!campaign) throw invalidField('campaignId', `no campaign ${body.campaignId} in this account`);
      campaignMax = campaign.max_concurrent_calls;
    }
    this.outbound.assertConfigured(body.provider);
    const callId = newId('cal');
    const startedAt = new Date();
    // Variables reach the agent (greeting placeholders, prompts) through the Store, as a campaign's do.
    if (opts.variables && Object.keys(opts.variables).length > 0) {
      await this.store.set(
        keys.callContext(callId),
        JSON.stringify({ variables: opts.variables }),
        CALL_CONTEXT_TTL_MS,
      );
    }
    const result = await this.outbound.place({
      callId,
      provider: body.provider,
      agentId: body.agentId,
      agentMax: agent.config.maxConcurrentCalls,
      campaignId: body.campaignId,
      campaignMax,
      from: body.from,
      to: body.to,
      timeoutSec: body.timeoutSec,
    });
    if (!result.ok && result.code === 'at_capacity') throw atCapacity(result);
    const placed: PlacedCall = {
      id: callId,
      accountId,
      provider: body.provider,
      providerCallId: result.ok ? result.providerCallId : null,
      agentId: body.agentId,
      campaignId: body.campaignId ?? null,
      from: body.from,
      to: body.to,
      startedAt,
      status: result.ok ? 'queued' : 'failed',
      ...(result.ok ? {} : { endReason: refusalReason(result) }),
    };
    const row = await recordPlacedCall(this.sql, placed);
    await callsChanged(this.store, [callId]);
    if (!result.ok) throw providerRefused(result);
    return toCall(row);
  }

  /** Asks the core node running the call to hang up. */
  hangup(accountId: string, id: string, reason?: string) {
    return this.command(accountId, id, { type: 'hangup', ...(reason ? { reason } : {}) });
  }

  /** Asks the core node running the call to have the agent say `text` now. */
  say(accountId: string, id: string, text: string) {
    return this.command(accountId, id, { type: 'say', text });
  }

  /** Asks the core node running the call to transfer the caller to `to` (E.164 or a SIP URI). */
  transfer(accountId: string, id: string, to: string) {
    return this.command(accountId, id, { type: 'transfer', to });
  }

  /**
   * Publishes a command on the call's channel, in the shape core parses (core/session/
   * commands.ts). Only the node running the call subscribes to it, so nobody receiving it
   * means the call is not live (409).
   */
  private async command(accountId: string, id: string, command: CallCommand) {
    await this.row(accountId, id);
    let receivers: number;
    try {
      receivers = await this.store.publish(keys.callCommands(id), JSON.stringify(command));
    } catch {
      throw new ApiError(503, 'store_unavailable', 'the command could not be sent; retry');
    }
    if (receivers === 0) {
      throw new ApiError(409, 'call_not_live', `call ${id} has no live session on any core node`);
    }
    return { callId: id, command: command.type, delivered: true as const };
  }
}

function parseTime(field: string, value: string): Date {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw invalidField(field, 'must be an ISO 8601 date-time');
  return d;
}
