import { createHash, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from '../../core/observability/index.ts';
import { keys, type Store } from '../../core/store/index.ts';
import type { Queryable, Sql } from '../db/index.ts';
import { newId } from '../ids.ts';
import { callsChanged } from '../modules/calls/changes.ts';
import {
  DEFAULT_RING_TIMEOUT_SEC,
  type OutboundDialing,
  recordPlacedCall,
  refusalReason,
} from '../modules/calls/index.ts';
import { type CampaignRow, type ContactRow, inWindow } from '../modules/campaigns/index.ts';
import { enqueueAccountEvent } from '../modules/webhooks/outbox.ts';
import { Backoff, Stopper } from './loop.ts';

export interface CampaignRunnerOptions {
  /** How often due campaigns are looked at. Default 20 ms (the pacing lease keeps the rate). */
  tickMs?: number;
  /** How often running campaigns are re-read from Postgres (and finished ones closed). Default 1 s. */
  refreshMs?: number;
  /** A claim the provider never confirmed becomes `unknown` after this long. Default 60 s. */
  staleClaimMs?: number;
  /**
   * A dialled contact with no outcome after this long becomes `unknown` (the status callback was
   * lost). Default: ring timeout + the longest call + the lease TTL.
   */
  outcomeTimeoutMs?: number;
  /** After a retryable provider error, the campaign waits this long. Default 5 s. */
  providerBackoffMs?: number;
  runnerId?: string;
}

interface RunningCampaign {
  row: CampaignRow;
  agentMax: number | undefined;
  /** Not before this time (ms): pacing, capacity, empty queue or provider backoff. */
  nextTryAt: number;
}

/** The pacing semaphore of a campaign: one slot, held for 1/cps seconds. */
const paceKey = (campaignId: string) => `campaign-pace:${campaignId}`;
const campaignLeaseKey = (campaignId: string) => `campaign:${campaignId}`;

/** Smallest gap between two dials of one campaign (the pacing lease's TTL floor). */
const MIN_PACE_MS = 20;

/**
 * Runs campaigns: for every running campaign inside its window, it starts calls at most
 * `callsPerSecond` (a one-slot lease per campaign in the Store, held 1/cps s, so pacing holds
 * across control nodes) and at most `maxConcurrentCalls` live (core's campaign lease, taken by
 * `originateCall` before the provider is asked).
 *
 * A contact is claimed in Postgres (`FOR UPDATE SKIP LOCKED`, status `dialing`, with the call id
 * it will be dialled under) in a transaction that commits BEFORE the provider is asked; the
 * provider's acceptance then confirms it. A restart therefore never dials a claimed contact
 * again: a claim left unconfirmed (the process died mid-dial) becomes `unknown` after
 * `staleClaimMs` and stays for a person to decide. Outcomes arrive through the recorder (call
 * status and end events), which settles the contact: completed, retrying, or failed.
 */
/** How long a placed call's context waits for its stream (ringing, answering). */
const CALL_CONTEXT_TTL_MS = 60 * 60 * 1000;

export class CampaignRunner {
  readonly runnerId: string;
  private readonly opts: Required<Omit<CampaignRunnerOptions, 'runnerId'>>;
  private stopper = new Stopper();
  private readonly inFlight = new Set<Promise<void>>();
  private campaigns = new Map<string, RunningCampaign>();
  private loop: Promise<void> | null = null;

  constructor(
    private readonly deps: { sql: Sql; store: Store; log: Logger; outbound: OutboundDialing },
    opts: CampaignRunnerOptions & { defaultOutcomeTimeoutMs: number },
  ) {
    this.runnerId = opts.runnerId ?? `runner-${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.opts = {
      tickMs: opts.tickMs ?? 20,
      refreshMs: opts.refreshMs ?? 1000,
      staleClaimMs: opts.staleClaimMs ?? 60_000,
      outcomeTimeoutMs: opts.outcomeTimeoutMs ?? opts.defaultOutcomeTimeoutMs,
      providerBackoffMs: opts.providerBackoffMs ?? 5_000,
    };
  }

  /** Starts the loop (again, after a `stop()`); a second call while running does nothing. */
  start(): void {
    if (this.loop) return;
    this.stopper = new Stopper();
    this.loop = this.run().catch((err: unknown) =>
      this.deps.log.error({ err: (err as Error).message }, 'campaign runner stopped on an unexpected error'),
    );
  }

  /** Stops starting calls, then waits for the dials in flight to be answered and recorded. */
  async stop(): Promise<void> {
    this.stopper.stop();
    await this.loop;
    this.loop = null;
    await Promise.allSettled([...this.inFlight]);
  }

  private async run(): Promise<void> {
    const backoff = new Backoff(100, 5_000);
    let nextRefreshAt = 0;
    while (!this.stopper.stopped) {
      try {
        if (Date.now() >= nextRefreshAt) {
          await this.refresh();
          nextRefreshAt = Date.now() + this.opts.refreshMs;
        }
        for (const campaign of this.campaigns.values()) {
          if (this.stopper.stopped) break;
          if (Date.now() >= campaign.nextTryAt) await this.tryDial(campaign);
        }
        backoff.reset();
        await this.stopper.sleep(this.opts.tickMs);
      } catch (err) {
        const delayMs = backoff.next();
        this.deps.log.warn(
          { err: (err as Error).message, retryInMs: delayMs },
          'campaign runner tick failed',
        );
        await this.stopper.sleep(delayMs);
      }
    }
  }

  /** Re-reads running campaigns, marks lost dials `unknown`, closes campaigns with nothing left. */
  private async refresh(): Promise<void> {
    const { sql } = this.deps;
    await sql`
      update campaign_contacts set status = 'unknown', last_outcome = 'dial_unconfirmed', updated_at = now()
      where status = 'dialing' and not dial_confirmed
        and claimed_at < now() - ${this.opts.staleClaimMs}::float8 * interval '1 millisecond'`;
    await sql`
      update campaign_contacts set status = 'unknown', last_outcome = 'no_outcome', updated_at = now()
      where status = 'dialing' and dial_confirmed
        and claimed_at < now() - ${this.opts.outcomeTimeoutMs}::float8 * interval '1 millisecond'`;
    // Each campaign completed and its `campaign.completed` event commit together.
    const finished = await sql.begin(async (tx) => {
      const rows = await tx<{ id: string; account_id: string; name: string; ended_at: Date }[]>`
        update campaigns k set status = 'completed', ended_at = now(), updated_at = now()
        where k.status = 'running' and not exists (
          select 1 from campaign_contacts c
          where c.campaign_id = k.id and c.status in ('pending', 'retrying', 'dialing'))
        returning k.id, k.account_id, k.name, k.ended_at`;
      for (const row of rows) await completedEvent(tx, row);
      return rows;
    });
    for (const { id } of finished) this.deps.log.info({ campaignId: id }, 'campaign completed');
    const rows = await sql<(CampaignRow & { agent_max: number | null })[]>`
      select k.*, (a.config->>'maxConcurrentCalls')::int as agent_max
      from campaigns k left join agents a on a.id = k.agent_id
      where k.status = 'running'
      order by k.id`;
    const next = new Map<string, RunningCampaign>();
    const now = new Date();
    for (const { agent_max, ...row } of rows) {
      const previous = this.campaigns.get(row.id)?.nextTryAt ?? 0;
      // Outside its window a campaign is skipped until the next refresh looks again.
      const open = inWindow(row.schedule, row.time_zone, now);
      next.set(row.id, {
        row,
        agentMax: agent_max ?? undefined,
        nextTryAt: !open ? Number.POSITIVE_INFINITY : Number.isFinite(previous) ? previous : 0,
      });
    }
    this.campaigns = next;
  }

  /** At most one dial per call: capacity first, then the pacing slot, then a claimed contact. */
  private async tryDial(campaign: RunningCampaign): Promise<void> {
    const { store } = this.deps;
    const { row } = campaign;
    const now = Date.now();
    const live = await store.leaseCount(campaignLeaseKey(row.id));
    if (live >= row.max_concurrent_calls) {
      campaign.nextTryAt = now + this.opts.tickMs;
      return;
    }
    const paceMs = Math.max(MIN_PACE_MS, Math.round(1000 / row.calls_per_second));
    const paced = await store.acquire([{ key: paceKey(row.id), limit: 1 }], randomUUID(), paceMs);
    if (!paced.ok) {
      campaign.nextTryAt = now + Math.min(this.opts.tickMs, paceMs);
      return;
    }
    campaign.nextTryAt = now + paceMs;
    const callId = newId('cal');
    const contact = await this.claim(row.id, callId);
    if (!contact) {
      // Nothing due now: retries wait for their time, or everything is dialled.
      campaign.nextTryAt = now + Math.max(paceMs, 250);
      return;
    }
    const dial = this.dial(campaign, contact, callId).catch((err: unknown) =>
      this.deps.log.error(
        { campaignId: row.id, seq: contact.seq, callId, err: (err as Error).message },
        'campaign dial failed',
      ),
    );
    this.inFlight.add(dial);
    void dial.finally(() => this.inFlight.delete(dial));
  }

  /** Claims the next due contact, committed before anyone is dialled. */
  private async claim(campaignId: string, callId: string): Promise<ContactRow | null> {
    const [row] = await this.deps.sql<ContactRow[]>`
      with next as (
        select c.campaign_id, c.seq from campaign_contacts c
        where c.campaign_id = ${campaignId}
          and c.status in ('pending', 'retrying')
          and (c.next_attempt_at is null or c.next_attempt_at <= now())
          and exists (select 1 from campaigns k where k.id = c.campaign_id and k.status = 'running')
        order by c.seq
        limit 1
        for update of c skip locked
      )
      update campaign_contacts cc set
        status = 'dialing', attempts = cc.attempts + 1, call_id = ${callId}, dial_confirmed = false,
        claimed_by = ${this.runnerId}, claimed_at = now(), next_attempt_at = null, updated_at = now()
      from next
      where cc.campaign_id = next.campaign_id and cc.seq = next.seq
      returning cc.*`;
    return row ?? null;
  }

  private async dial(campaign: RunningCampaign, contact: ContactRow, callId: string): Promise<void> {
    const { sql, outbound, log } = this.deps;
    const { row } = campaign;
    const startedAt = new Date();
    let result: Awaited<ReturnType<OutboundDialing['place']>>;
    try {
      // The contact's variables reach the agent (greeting placeholders, prompts) through the Store.
      if (contact.variables && Object.keys(contact.variables).length > 0) {
        await this.deps.store.set(
          keys.callContext(callId),
          JSON.stringify({ variables: contact.variables, campaignId: row.id }),
          CALL_CONTEXT_TTL_MS,
        );
      }
      result = await outbound.place({
        callId,
        provider: row.provider,
        agentId: row.agent_id,
        agentMax: campaign.agentMax,
        campaignId: row.id,
        campaignMax: row.max_concurrent_calls,
        from: row.caller_id,
        to: contact.phone_number,
        timeoutSec: DEFAULT_RING_TIMEOUT_SEC,
      });
    } catch (err) {
      // We cannot tell whether the provider was reached: never redial on a guess.
      await this.settle(contact, callId, 'unknown', `dial_error: ${(err as Error).message}`.slice(0, 200));
      throw err;
    }
    if (result.ok) {
      await sql.begin(async (tx) => {
        await tx`
          update campaign_contacts set dial_confirmed = true, updated_at = now()
          where campaign_id = ${row.id} and seq = ${contact.seq} and call_id = ${callId}`;
        await recordPlacedCall(tx, {
          id: callId,
          accountId: row.account_id,
          provider: row.provider,
          providerCallId: result.providerCallId,
          agentId: row.agent_id,
          campaignId: row.id,
          from: row.caller_id,
          to: contact.phone_number,
          startedAt,
          status: 'queued',
        });
      });
      await callsChanged(this.deps.store, [callId]);
      return;
    }
    if (result.code === 'at_capacity') {
      // Nothing was dialled: give the claim back.
      await this.release(contact, callId);
      campaign.nextTryAt = Date.now() + this.opts.tickMs;
      return;
    }
    const error = result.error;
    if (error.kind === 'timeout') {
      // The provider may have placed it anyway: not redialled automatically.
      await this.settle(contact, callId, 'unknown', refusalReason(result));
      return;
    }
    if (result.retryable) {
      await this.release(contact, callId);
      campaign.nextTryAt = Date.now() + this.opts.providerBackoffMs;
      log.warn({ campaignId: row.id, err: error.message }, 'provider refused a campaign call, backing off');
      return;
    }
    await sql.begin(async (tx) => {
      await tx`
        update campaign_contacts set status = 'failed', last_outcome = ${refusalReason(result)}, updated_at = now()
        where campaign_id = ${row.id} and seq = ${contact.seq} and call_id = ${callId}`;
      await recordPlacedCall(tx, {
        id: callId,
        accountId: row.account_id,
        provider: row.provider,
        providerCallId: null,
        agentId: row.agent_id,
        campaignId: row.id,
        from: row.caller_id,
        to: contact.phone_number,
        startedAt,
        status: 'failed',
        endReason: refusalReason(result),
      });
    });
    await callsChanged(this.deps.store, [callId]);
  }

  /** Undoes a claim whose call was never placed. */
  private async release(contact: ContactRow, callId: string): Promise<void> {
    await this.deps.sql`
      update campaign_contacts set
        status = case when attempts <= 1 then 'pending' else 'retrying' end,
        attempts = attempts - 1, call_id = null, claimed_by = null, claimed_at = null, updated_at = now()
      where campaign_id = ${contact.campaign_id} and seq = ${contact.seq} and call_id = ${callId}
        and status = 'dialing'`;
  }

  private async settle(
    contact: ContactRow,
    callId: string,
    status: 'unknown',
    outcome: string,
  ): Promise<void> {
    await this.deps.sql`
      update campaign_contacts set status = ${status}, last_outcome = ${outcome}, updated_at = now()
      where campaign_id = ${contact.campaign_id} and seq = ${contact.seq} and call_id = ${callId}
        and status = 'dialing'`;
  }
}

/**
 * Writes `campaign.completed` for a campaign just marked completed, with its contacts' final
 * counts. The id derives from the campaign (it completes once), so writing it twice adds nothing.
 */
async function completedEvent(
  tx: Queryable,
  campaign: { id: string; account_id: string; name: string; ended_at: Date },
): Promise<void> {
  const counts = await tx<{ status: string; n: number }[]>`
    select status, count(*)::int as n from campaign_contacts
    where campaign_id = ${campaign.id} group by status`;
  const contacts: Record<string, number> = { total: 0, completed: 0, failed: 0, unknown: 0, canceled: 0 };
  for (const { status, n } of counts) {
    contacts[status] = (contacts[status] ?? 0) + n;
    contacts.total! += n;
  }
  await enqueueAccountEvent(tx, {
    id: `evt_${createHash('sha256').update(`campaign.completed:${campaign.id}`).digest('hex').slice(0, 32)}`,
    accountId: campaign.account_id,
    type: 'campaign.completed',
    at: campaign.ended_at,
    data: { campaignId: campaign.id, name: campaign.name, contacts },
  });
}
