import type { Logger } from '../../../core/observability/index.ts';
import { sanitizeText } from '../../../core/wire/sanitize.ts';
import type { Queryable, Sql } from '../../db/index.ts';
import type { Resolve } from './destination.ts';
import { envelopeBody } from './outbox.ts';
import { type AttemptResult, sendWebhook } from './sender.ts';

/**
 * Claiming due deliveries and recording what each attempt came to: the rules of the outbox,
 * shared by the dispatcher (control/workers/dispatcher.ts) and the test route. Attempts are
 * counted when claimed, so a dispatcher that dies mid-request still used one; a claimed row is
 * leased (its next attempt pushed `leaseMs` ahead), so another dispatcher takes it over only
 * once the lease lapses.
 */

/** How deliveries are attempted and retried. */
export interface DeliveryPolicy {
  /** How long a receiver has to answer. */
  timeoutMs: number;
  /** Attempts per delivery before it is marked failed (a dead letter, replayable). */
  maxAttempts: number;
  /** First retry delay; doubles per attempt (with jitter) up to `retryMaxMs`. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** Deliveries failed for good in a row after which the endpoint is disabled. */
  disableAfterFailures: number;
  /** Private, loopback and link-local destinations allowed (local development). */
  allowPrivate: boolean;
  resolve?: Resolve;
  fetch?: typeof fetch;
}

/** One claimed delivery with what sending it needs. */
export interface ClaimedDelivery {
  id: string;
  endpoint_id: string;
  event_id: string;
  /** Attempts including this one. */
  attempts: number;
  url: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  type: string;
  version: number;
  account_id: string;
  call_id: string | null;
  at: Date;
  data: Record<string, unknown>;
}

/** What became of an attempt, for the caller's counters. */
export type AttemptOutcome = 'delivered' | 'retrying' | 'failed';

/**
 * The delay before retry number `attempt` (1 = the first retry): `baseMs` doubling, capped at
 * `maxMs`, with "equal jitter" (half fixed, half random) so receivers coming back are not hit
 * by every retry at once.
 */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}

/**
 * Claims up to `limit` due deliveries of enabled endpoints (`FOR UPDATE SKIP LOCKED`: several
 * dispatchers never take the same row), counting the attempt and leasing each for `leaseMs`.
 */
export async function claimDue(
  sql: Sql,
  opts: { limit: number; leaseMs: number; maxAttempts: number; nowMs: number },
): Promise<ClaimedDelivery[]> {
  const now = new Date(opts.nowMs);
  const leaseUntil = new Date(opts.nowMs + opts.leaseMs);
  return sql<ClaimedDelivery[]>`
    with due as (
      select d.id from webhook_deliveries d
      join webhook_endpoints e on e.id = d.endpoint_id
      where d.status = 'pending' and d.next_attempt_at <= ${now} and e.enabled
        and d.attempts < ${opts.maxAttempts}
      order by d.next_attempt_at
      limit ${opts.limit}
      for update of d skip locked
    ),
    claimed as (
      update webhook_deliveries d
      set attempts = d.attempts + 1, next_attempt_at = ${leaseUntil}, last_attempt_at = ${now}
      from due where d.id = due.id
      returning d.id, d.endpoint_id, d.event_id, d.attempts
    )
    select c.id, c.endpoint_id, c.event_id, c.attempts, e.url, e.secret, e.previous_secret,
           e.previous_secret_expires_at, v.type, v.version, v.account_id, v.call_id, v.at, v.data
    from claimed c
    join webhook_endpoints e on e.id = c.endpoint_id
    join webhook_events v on v.id = c.event_id`;
}

/**
 * Deliveries whose last permitted attempt was claimed by a dispatcher that never reported back
 * (its lease lapsed): marked failed, so none is attempted more than `maxAttempts` times.
 */
export async function failExhausted(sql: Sql, opts: { maxAttempts: number; nowMs: number }): Promise<number> {
  const rows = await sql`
    update webhook_deliveries set status = 'failed',
      last_error = coalesce(last_error, 'no answer recorded for the last attempt')
    where status = 'pending' and attempts >= ${opts.maxAttempts} and next_attempt_at <= ${new Date(opts.nowMs)}
    returning id`;
  return rows.length;
}

/** How far the outbox is behind, as `/v1/health` and the dispatcher's gauges report it. */
export interface OutboxLag {
  /** Deliveries not yet delivered or failed, of enabled endpoints (due now or waiting to retry). */
  pending: number;
  /** Of those, the ones due now: no dispatcher has them, no retry delay holds them back. */
  due: number;
  /** Age of the oldest due delivery (how long it has been due), ms; 0 when none is due. */
  lagMs: number;
}

/** Measures the outbox at `nowMs`: one query over the pending deliveries' partial index. */
export async function measureOutbox(db: Queryable, nowMs: number): Promise<OutboxLag> {
  const now = new Date(nowMs);
  const [row] = await db<{ pending: number; due: number; oldest: Date | null }[]>`
    select count(*)::int as pending,
           (count(*) filter (where d.next_attempt_at <= ${now}))::int as due,
           min(d.next_attempt_at) filter (where d.next_attempt_at <= ${now}) as oldest
    from webhook_deliveries d join webhook_endpoints e on e.id = d.endpoint_id
    where d.status = 'pending' and e.enabled`;
  return {
    pending: row?.pending ?? 0,
    due: row?.due ?? 0,
    lagMs: row?.oldest ? Math.max(0, nowMs - row.oldest.getTime()) : 0,
  };
}

/** The secrets that sign a request now: the current one, and the previous one while it overlaps. */
export function signingSecrets(
  d: Pick<ClaimedDelivery, 'secret' | 'previous_secret' | 'previous_secret_expires_at'>,
  nowMs: number,
): string[] {
  const secrets = [d.secret];
  if (d.previous_secret && d.previous_secret_expires_at && d.previous_secret_expires_at.getTime() > nowMs)
    secrets.push(d.previous_secret);
  return secrets;
}

/** What recording an attempt needs besides the policy. */
export interface AttemptDeps {
  log: Logger;
  nowMs: () => number;
  random?: () => number;
  /** False: one attempt only, whatever the outcome (a test request). Default true. */
  retry?: boolean;
  /** False: a failure does not count toward disabling the endpoint (a test request). Default true. */
  countFailure?: boolean;
}

/** Sends one claimed delivery and records the outcome. */
export async function attemptDelivery(
  sql: Sql,
  d: ClaimedDelivery,
  policy: DeliveryPolicy,
  deps: AttemptDeps,
): Promise<{ outcome: AttemptOutcome; result: AttemptResult }> {
  const result = await sendWebhook({
    url: d.url,
    id: d.event_id,
    body: envelopeBody(d),
    secrets: signingSecrets(d, deps.nowMs()),
    timeoutMs: policy.timeoutMs,
    allowPrivate: policy.allowPrivate,
    resolve: policy.resolve,
    nowSec: Math.floor(deps.nowMs() / 1000),
    fetch: policy.fetch,
  });
  const outcome = await recordAttempt(sql, d, result, policy, deps);
  return { outcome, result };
}

/** Writes an attempt's result: delivered, scheduled again, or failed (and the endpoint's streak). */
export async function recordAttempt(
  sql: Sql,
  d: Pick<ClaimedDelivery, 'id' | 'endpoint_id' | 'attempts'>,
  result: AttemptResult,
  policy: DeliveryPolicy,
  deps: AttemptDeps,
): Promise<AttemptOutcome> {
  const now = new Date(deps.nowMs());
  const error = result.error ? sanitizeText(result.error, 500) : null;
  if (result.ok) {
    await sql.begin(async (tx) => {
      await tx`
        update webhook_deliveries set status = 'delivered', delivered_at = ${now}, next_attempt_at = ${now},
          last_status = ${result.status}, last_error = null
        where id = ${d.id} and status = 'pending'`;
      await tx`
        update webhook_endpoints set consecutive_failures = 0
        where id = ${d.endpoint_id} and consecutive_failures <> 0`;
    });
    return 'delivered';
  }
  if (result.retryable && d.attempts < policy.maxAttempts && deps.retry !== false) {
    const backoffMs = retryDelayMs(d.attempts, policy.retryBaseMs, policy.retryMaxMs, deps.random);
    // A receiver asking for more time gets it, within the longest delay we ever wait.
    const delayMs = Math.max(backoffMs, Math.min(result.retryAfterMs ?? 0, policy.retryMaxMs));
    await sql`
      update webhook_deliveries set next_attempt_at = ${new Date(now.getTime() + delayMs)},
        last_status = ${result.status}, last_error = ${error}
      where id = ${d.id} and status = 'pending' and attempts = ${d.attempts}`;
    return 'retrying';
  }
  await sql.begin(async (tx) => {
    const failed = await tx`
      update webhook_deliveries set status = 'failed', next_attempt_at = ${now},
        last_status = ${result.status}, last_error = ${error}
      where id = ${d.id} and status = 'pending' and attempts = ${d.attempts}
      returning id`;
    if (failed.length === 0 || deps.countFailure === false) return;
    await markEndpointFailure(tx, d.endpoint_id, error, policy, deps.log);
  });
  return 'failed';
}

/** Counts a failed delivery against its endpoint; disables the endpoint past the limit. */
async function markEndpointFailure(
  tx: Queryable,
  endpointId: string,
  error: string | null,
  policy: DeliveryPolicy,
  log: Logger,
): Promise<void> {
  const reason = `${policy.disableAfterFailures} deliveries in a row failed; last: ${error ?? 'unknown'}`;
  const [row] = await tx<{ disabled: boolean; account_id: string; consecutive_failures: number }[]>`
    update webhook_endpoints set
      consecutive_failures = consecutive_failures + 1,
      enabled = enabled and consecutive_failures + 1 < ${policy.disableAfterFailures},
      disabled_reason = case when enabled and consecutive_failures + 1 >= ${policy.disableAfterFailures}
                             then ${reason} else disabled_reason end,
      updated_at = now()
    where id = ${endpointId}
    returning (not enabled) as disabled, account_id, consecutive_failures`;
  if (row?.disabled && row.consecutive_failures === policy.disableAfterFailures)
    log.warn(
      { endpointId, accountId: row.account_id, failures: row.consecutive_failures },
      'webhook endpoint disabled after failing deliveries',
    );
}
