import type { Queryable, Sql } from '../../db/index.ts';
import { ApiError, invalidField, notFound } from '../../errors.ts';
import { newId } from '../../ids.ts';
import { toPage } from '../../pagination.ts';
import { isPgError } from '../../store-mirror.ts';
import type { OutboundDialing } from '../calls/outbound.ts';
import type { ContactInput } from './csv.ts';
import {
  type Campaign,
  type CampaignAction,
  type CampaignContact,
  type CampaignStatus,
  CONTACT_STATUSES,
  type ContactStatus,
  type CreateCampaignBody,
  type Progress,
  type Schedule,
} from './model.ts';
import { canonicalTimeZone, minutesOf } from './schedule.ts';

export interface CampaignRow {
  id: string;
  account_id: string;
  name: string;
  agent_id: string;
  provider: 'jambonz' | 'twilio';
  caller_id: string;
  status: CampaignStatus;
  time_zone: string;
  schedule: Schedule | null;
  calls_per_second: number;
  max_concurrent_calls: number;
  max_attempts: number;
  retry_delay_sec: number;
  created_at: Date;
  updated_at: Date;
  started_at: Date | null;
  ended_at: Date | null;
}

export interface ContactRow {
  campaign_id: string;
  seq: number;
  phone_number: string;
  variables: Record<string, string> | null;
  status: ContactStatus;
  attempts: number;
  next_attempt_at: Date | null;
  call_id: string | null;
  dial_confirmed: boolean;
  last_outcome: string | null;
  updated_at: Date;
}

/** How a call ended, as far as a campaign cares. */
export type CallOutcome = 'completed' | 'busy' | 'no-answer' | 'failed' | 'canceled';

/** What a new campaign gets without `retry`: one attempt. */
export const DEFAULT_RETRY = { maxAttempts: 1, retryDelaySec: 300 };

const TRANSITIONS: Record<CampaignAction, { from: CampaignStatus[]; to: CampaignStatus }> = {
  start: { from: ['draft'], to: 'running' },
  pause: { from: ['running'], to: 'paused' },
  resume: { from: ['paused'], to: 'running' },
  cancel: { from: ['draft', 'running', 'paused'], to: 'canceled' },
};

const iso = (d: Date | null) => (d ? d.toISOString() : null);

function emptyProgress(): Progress {
  const p = { total: 0 } as Progress;
  for (const s of CONTACT_STATUSES) p[s] = 0;
  return p;
}

function toCampaign(row: CampaignRow, progress: Progress): Campaign {
  return {
    id: row.id,
    name: row.name,
    agentId: row.agent_id,
    provider: row.provider,
    callerId: row.caller_id,
    timeZone: row.time_zone,
    schedule: row.schedule,
    callsPerSecond: row.calls_per_second,
    maxConcurrentCalls: row.max_concurrent_calls,
    retry: { maxAttempts: row.max_attempts, retryDelaySec: row.retry_delay_sec },
    status: row.status,
    progress,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    startedAt: iso(row.started_at),
    endedAt: iso(row.ended_at),
  };
}

function toContact(row: ContactRow): CampaignContact {
  return {
    seq: row.seq,
    phoneNumber: row.phone_number,
    variables: row.variables,
    status: row.status,
    attempts: row.attempts,
    nextAttemptAt: iso(row.next_attempt_at),
    callId: row.call_id,
    lastOutcome: row.last_outcome,
    updatedAt: row.updated_at.toISOString(),
  };
}

/** Rules the schema cannot state; each failure names its field. */
function checkSettings(body: CreateCampaignBody): string {
  const zone = canonicalTimeZone(body.timeZone);
  if (!zone) throw invalidField('timeZone', `"${body.timeZone}" is not an IANA time zone`);
  if (body.schedule && minutesOf(body.schedule.startTime) === minutesOf(body.schedule.endTime)) {
    throw invalidField('schedule.endTime', 'must differ from startTime');
  }
  return zone;
}

/**
 * Campaigns: settings, contacts and state in Postgres. The dialling itself is the campaign
 * runner's (control/workers/campaign-runner.ts); this service also applies call outcomes to
 * contacts for the recorder.
 */
export class CampaignService {
  constructor(
    private readonly sql: Sql,
    private readonly outbound: OutboundDialing,
  ) {}

  async create(accountId: string, body: CreateCampaignBody): Promise<Campaign> {
    const timeZone = checkSettings(body);
    const missing = this.outbound.missingSettings(body.provider);
    if (missing) {
      throw invalidField(
        'provider',
        `${body.provider} is not configured on this deployment (set ${missing.join(', ')})`,
      );
    }
    const retry = body.retry ?? DEFAULT_RETRY;
    const id = newId('cmp');
    return this.sql.begin(async (tx) => {
      const [agent] = await tx`select 1 from agents where id = ${body.agentId} and account_id = ${accountId}`;
      if (!agent) throw invalidField('agentId', `no agent ${body.agentId} in this account`);
      const [row] = await tx<CampaignRow[]>`
        insert into campaigns (id, account_id, name, agent_id, provider, caller_id, time_zone, schedule,
                               calls_per_second, max_concurrent_calls, max_attempts, retry_delay_sec)
        values (${id}, ${accountId}, ${body.name}, ${body.agentId}, ${body.provider}, ${body.callerId},
                ${timeZone}, ${body.schedule ? tx.json(body.schedule) : null}, ${body.callsPerSecond},
                ${body.maxConcurrentCalls}, ${retry.maxAttempts}, ${retry.retryDelaySec})
        returning *`;
      await this.insertContacts(tx, id, body.contacts ?? []);
      return toCampaign(row!, await this.progress(id, tx));
    });
  }

  private async row(accountId: string, id: string, db: Queryable = this.sql): Promise<CampaignRow> {
    const [row] = await db<CampaignRow[]>`
      select * from campaigns where id = ${id} and account_id = ${accountId}`;
    if (!row) throw notFound('campaign', id);
    return row;
  }

  async get(accountId: string, id: string): Promise<Campaign> {
    const row = await this.row(accountId, id);
    return toCampaign(row, await this.progress(id));
  }

  async list(accountId: string, limit: number, cursor?: string) {
    const rows = await this.sql<CampaignRow[]>`
      select * from campaigns
      where account_id = ${accountId} ${cursor ? this.sql`and id < ${cursor}` : this.sql``}
      order by id desc
      limit ${limit + 1}`;
    const page = rows.slice(0, limit);
    const counts = await this.progressOf(page.map((r) => r.id));
    return toPage(
      rows,
      limit,
      (r) => toCampaign(r, counts.get(r.id) ?? emptyProgress()),
      (r) => r.id,
    );
  }

  /** Adds contacts after the last; refused once the campaign has completed or been canceled. */
  async addContacts(accountId: string, id: string, contacts: ContactInput[]) {
    try {
      return await this.sql.begin(async (tx) => {
        const [row] = await tx<CampaignRow[]>`
          select * from campaigns where id = ${id} and account_id = ${accountId} for update`;
        if (!row) throw notFound('campaign', id);
        if (row.status === 'completed' || row.status === 'canceled') {
          throw new ApiError(
            409,
            'invalid_state',
            `campaign ${id} is ${row.status}; contacts can no longer be added`,
            {
              status: row.status,
            },
          );
        }
        await this.insertContacts(tx, id, contacts);
        return { added: contacts.length, progress: await this.progress(id, tx) };
      });
    } catch (err) {
      if (isPgError(err, '23505')) {
        throw new ApiError(
          409,
          'duplicate_contact',
          'a contact with one of these numbers was added meanwhile',
        );
      }
      throw err;
    }
  }

  /** Inserts after the last `seq`; 422 naming the first number already in the list. */
  private async insertContacts(tx: Queryable, campaignId: string, contacts: ContactInput[]): Promise<void> {
    if (contacts.length === 0) return;
    const seen = new Map<string, number>();
    contacts.forEach((c, i) => {
      const first = seen.get(c.phoneNumber);
      if (first !== undefined) {
        throw invalidField(
          `contacts.${i}.phoneNumber`,
          `${c.phoneNumber} is listed twice (also contacts.${first})`,
        );
      }
      seen.set(c.phoneNumber, i);
    });
    const phones = contacts.map((c) => c.phoneNumber);
    const [dup] = await tx<{ phone_number: string }[]>`
      select phone_number from campaign_contacts
      where campaign_id = ${campaignId} and phone_number = any(${phones}::text[])
      limit 1`;
    if (dup) {
      const i = seen.get(dup.phone_number)!;
      throw invalidField(`contacts.${i}.phoneNumber`, `${dup.phone_number} is already in this campaign`);
    }
    const [{ last }] = await tx<{ last: number }[]>`
      select coalesce(max(seq), 0)::int as last from campaign_contacts where campaign_id = ${campaignId}`;
    const seqs = contacts.map((_, i) => last + i + 1);
    const variables = contacts.map((c) => (c.variables ? JSON.stringify(c.variables) : null));
    await tx`
      insert into campaign_contacts (campaign_id, seq, phone_number, variables)
      select ${campaignId}, s.seq, s.phone, s.vars::jsonb
      from unnest(${seqs}::int[], ${phones}::text[], ${variables}::text[]) as s(seq, phone, vars)`;
  }

  async contacts(
    accountId: string,
    id: string,
    q: { limit?: number; cursor?: string; status?: ContactStatus },
  ) {
    await this.row(accountId, id);
    const limit = q.limit ?? 20;
    const rows = await this.sql<ContactRow[]>`
      select * from campaign_contacts
      where campaign_id = ${id}
        ${q.cursor ? this.sql`and seq > ${Number(q.cursor)}` : this.sql``}
        ${q.status ? this.sql`and status = ${q.status}` : this.sql``}
      order by seq
      limit ${limit + 1}`;
    return toPage(rows, limit, toContact, (r) => String(r.seq));
  }

  /**
   * start (draft → running), pause (running → paused), resume (paused → running), cancel (any
   * unfinished state → canceled; contacts not yet dialled are canceled, calls in progress go on).
   * Any other move is a 409 naming the current state.
   */
  async transition(accountId: string, id: string, action: CampaignAction): Promise<Campaign> {
    const rule = TRANSITIONS[action];
    return this.sql.begin(async (tx) => {
      const current = await this.row(accountId, id, tx);
      if (!rule.from.includes(current.status)) {
        throw new ApiError(409, 'invalid_state', `cannot ${action} a campaign that is ${current.status}`, {
          status: current.status,
          action,
        });
      }
      if (action === 'start' || action === 'resume') this.outbound.assertConfigured(current.provider);
      if (action === 'start') {
        const [any] = await tx`select 1 from campaign_contacts where campaign_id = ${id} limit 1`;
        if (!any) throw new ApiError(409, 'no_contacts', `campaign ${id} has no contacts to call`);
      }
      if (action === 'cancel') {
        await tx`
          update campaign_contacts set status = 'canceled', next_attempt_at = null, updated_at = now()
          where campaign_id = ${id} and status in ('pending', 'retrying')`;
      }
      const [row] = await tx<CampaignRow[]>`
        update campaigns set
          status = ${rule.to},
          started_at = case when ${action} = 'start' then now() else started_at end,
          ended_at = case when ${rule.to} = 'canceled' then now() else ended_at end,
          updated_at = now()
        where id = ${id} and status = ${current.status}
        returning *`;
      return toCampaign(row!, await this.progress(id, tx));
    });
  }

  async progress(campaignId: string, db: Queryable = this.sql): Promise<Progress> {
    return (await this.progressOf([campaignId], db)).get(campaignId) ?? emptyProgress();
  }

  private async progressOf(ids: string[], db: Queryable = this.sql): Promise<Map<string, Progress>> {
    const out = new Map<string, Progress>();
    if (ids.length === 0) return out;
    const rows = await db<{ campaign_id: string; status: ContactStatus; n: number }[]>`
      select campaign_id, status, count(*)::int as n from campaign_contacts
      where campaign_id = any(${ids}::text[])
      group by campaign_id, status`;
    for (const r of rows) {
      const p = out.get(r.campaign_id) ?? emptyProgress();
      out.set(r.campaign_id, p);
      p[r.status] += r.n;
      p.total += r.n;
    }
    return out;
  }

  /**
   * Settles the contact whose latest attempt is `callId`: answered → completed; busy or no
   * answer → retrying after the campaign's delay while attempts remain (never once canceled),
   * else failed. Applies to `unknown` contacts too: late news beats none. Returns whether a
   * contact changed (false for calls of no campaign, or news already applied).
   */
  async applyCallOutcome(db: Queryable, callId: string, outcome: CallOutcome): Promise<boolean> {
    const retryable = outcome === 'busy' || outcome === 'no-answer';
    const rows = await db`
      update campaign_contacts c set
        status = case
          when ${retryable} and c.attempts < k.max_attempts and k.status <> 'canceled' then 'retrying'
          when ${outcome} = 'completed' then 'completed'
          else 'failed' end,
        next_attempt_at = case
          when ${retryable} and c.attempts < k.max_attempts and k.status <> 'canceled'
            then now() + k.retry_delay_sec * interval '1 second'
          else null end,
        last_outcome = ${outcome},
        updated_at = now()
      from campaigns k
      where c.call_id = ${callId} and c.status in ('dialing', 'unknown') and k.id = c.campaign_id
      returning c.seq`;
    return rows.length > 0;
  }
}
