import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from '../../../core/observability/index.ts';
import type { Sql } from '../../db/index.ts';
import { ApiError, invalidField, notFound } from '../../errors.ts';
import { newId } from '../../ids.ts';
import { toPage } from '../../pagination.ts';
import { attemptDelivery, type ClaimedDelivery, type DeliveryPolicy } from './delivery.ts';
import { checkDestination, DestinationError } from './destination.ts';
import type { CreateWebhookBody, UpdateWebhookBody, WebhookDelivery, WebhookEndpoint } from './model.ts';
import { deliveryIdOf, enqueueAccountEvent } from './outbox.ts';

interface EndpointRow {
  id: string;
  account_id: string;
  url: string;
  events: string[];
  description: string;
  enabled: boolean;
  disabled_reason: string | null;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

interface DeliveryRow {
  id: string;
  endpoint_id: string;
  event_id: string;
  type: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_at: Date;
  last_attempt_at: Date | null;
  last_status: number | null;
  last_error: string | null;
  delivered_at: Date | null;
  created_at: Date;
}

/** A previous secret keeps signing this long after a rotation unless the request says otherwise. */
export const DEFAULT_ROTATION_OVERLAP_SEC = 86_400;

/** Endpoints an account may have. */
export const MAX_ENDPOINTS_PER_ACCOUNT = 50;

/** A fresh signing secret: `whsec_` and 32 random bytes in base64, as Standard Webhooks libraries take it. */
export function generateWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** Endpoint ids (`whk_…`) sort by creation time like every other id. */
function newEndpointId(): string {
  return newId('whk');
}

function toEndpoint(row: EndpointRow, nowMs = Date.now()): WebhookEndpoint {
  const overlapping =
    row.previous_secret && row.previous_secret_expires_at && row.previous_secret_expires_at.getTime() > nowMs;
  return {
    id: row.id,
    url: row.url,
    events: row.events,
    description: row.description,
    enabled: row.enabled,
    disabledReason: row.disabled_reason,
    secretRotatedUntil: overlapping ? row.previous_secret_expires_at!.toISOString() : null,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

function toDelivery(row: DeliveryRow): WebhookDelivery {
  return {
    id: row.id,
    endpointId: row.endpoint_id,
    eventId: row.event_id,
    eventType: row.type,
    status: row.status,
    attempts: row.attempts,
    nextAttemptAt: row.status === 'pending' ? row.next_attempt_at.toISOString() : null,
    lastAttemptAt: row.last_attempt_at?.toISOString() ?? null,
    lastStatus: row.last_status,
    lastError: row.last_error,
    deliveredAt: row.delivered_at?.toISOString() ?? null,
    createdAt: row.created_at.toISOString(),
  };
}

/** A delivery-log cursor: the last row's creation time and id, opaque to clients. */
function encodeCursor(row: DeliveryRow): string {
  return Buffer.from(`${row.created_at.toISOString()}|${row.id}`).toString('base64url');
}

function decodeCursor(cursor: string): { at: Date; id: string } {
  const [at, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const date = new Date(at ?? '');
  if (!id || !/^dlv_[0-9a-f]{26}$/.test(id) || Number.isNaN(date.getTime()))
    throw invalidField('cursor', 'is not a cursor this list returned');
  return { at: date, id };
}

/**
 * Webhook endpoints of an account: CRUD, secret rotation, a test request, the delivery log and
 * replays. Destinations are checked when saved (destination.ts) and again at every delivery.
 */
export class WebhookService {
  constructor(
    private readonly sql: Sql,
    private readonly policy: DeliveryPolicy,
    private readonly log: Logger,
  ) {}

  private async checkUrl(url: string): Promise<void> {
    try {
      await checkDestination(url, { allowPrivate: this.policy.allowPrivate, resolve: this.policy.resolve });
    } catch (err) {
      if (err instanceof DestinationError) throw invalidField('url', err.message);
      throw err;
    }
  }

  private async row(accountId: string, id: string): Promise<EndpointRow> {
    const [row] = await this.sql<EndpointRow[]>`
      select * from webhook_endpoints where id = ${id} and account_id = ${accountId}`;
    if (!row) throw notFound('webhook endpoint', id);
    return row;
  }

  /** Registers an endpoint; the response is the only one that carries its secret. */
  async create(accountId: string, body: CreateWebhookBody): Promise<WebhookEndpoint & { secret: string }> {
    await this.checkUrl(body.url);
    const secret = generateWebhookSecret();
    const [{ n }] = await this.sql<{ n: number }[]>`
      select count(*)::int as n from webhook_endpoints where account_id = ${accountId}`;
    if (n >= MAX_ENDPOINTS_PER_ACCOUNT)
      throw new ApiError(
        409,
        'too_many_endpoints',
        `an account may have ${MAX_ENDPOINTS_PER_ACCOUNT} webhook endpoints`,
      );
    const [row] = await this.sql<EndpointRow[]>`
      insert into webhook_endpoints (id, account_id, url, events, description, secret)
      values (${newEndpointId()}, ${accountId}, ${body.url}, ${body.events ?? []}, ${body.description ?? ''}, ${secret})
      returning *`;
    return { ...toEndpoint(row!), secret };
  }

  async list(accountId: string, limit: number, cursor?: string) {
    const rows = await this.sql<EndpointRow[]>`
      select * from webhook_endpoints
      where account_id = ${accountId} ${cursor ? this.sql`and id collate "C" < ${cursor}` : this.sql``}
      order by id collate "C" desc
      limit ${limit + 1}`;
    return toPage(
      rows,
      limit,
      (r) => toEndpoint(r),
      (r) => r.id,
    );
  }

  async get(accountId: string, id: string): Promise<WebhookEndpoint> {
    return toEndpoint(await this.row(accountId, id));
  }

  /** Changes the fields given; enabling an endpoint clears why it was disabled and its failure streak. */
  async update(accountId: string, id: string, body: UpdateWebhookBody): Promise<WebhookEndpoint> {
    await this.row(accountId, id);
    if (body.url !== undefined) await this.checkUrl(body.url);
    const [row] = await this.sql<EndpointRow[]>`
      update webhook_endpoints set
        url = coalesce(${body.url ?? null}, url),
        events = coalesce(${body.events ?? null}::text[], events),
        description = coalesce(${body.description ?? null}, description),
        enabled = coalesce(${body.enabled ?? null}::boolean, enabled),
        disabled_reason = case when ${body.enabled ?? null}::boolean is not null then null else disabled_reason end,
        consecutive_failures = case when ${body.enabled ?? null}::boolean then 0 else consecutive_failures end,
        updated_at = now()
      where id = ${id} and account_id = ${accountId}
      returning *`;
    if (!row) throw notFound('webhook endpoint', id);
    return toEndpoint(row);
  }

  /** Deletes the endpoint and its delivery log. */
  async delete(accountId: string, id: string): Promise<{ id: string; deleted: true }> {
    const rows = await this
      .sql`delete from webhook_endpoints where id = ${id} and account_id = ${accountId} returning id`;
    if (rows.length === 0) throw notFound('webhook endpoint', id);
    return { id, deleted: true };
  }

  /**
   * A new secret; the previous one keeps signing alongside it for `overlapSec`, so receivers
   * can switch without dropping a request. The response is the only one carrying the new secret.
   */
  async rotateSecret(
    accountId: string,
    id: string,
    overlapSec = DEFAULT_ROTATION_OVERLAP_SEC,
  ): Promise<WebhookEndpoint & { secret: string }> {
    const secret = generateWebhookSecret();
    const until = new Date(Date.now() + overlapSec * 1000);
    const [row] = await this.sql<EndpointRow[]>`
      update webhook_endpoints set previous_secret = secret, previous_secret_expires_at = ${until},
        secret = ${secret}, updated_at = now()
      where id = ${id} and account_id = ${accountId}
      returning *`;
    if (!row) throw notFound('webhook endpoint', id);
    return { ...toEndpoint(row), secret };
  }

  /**
   * Sends a `webhook.test` event to this endpoint at once (enabled or not), one attempt, and
   * returns the delivery as it stands: the receiver's status, or why it failed.
   */
  async test(accountId: string, id: string): Promise<WebhookDelivery> {
    const endpoint = await this.row(accountId, id);
    const eventId = `evt_${randomUUID().replaceAll('-', '')}`;
    const deliveryId = deliveryIdOf(id, eventId);
    // Written already claimed (one attempt, leased past its timeout), so no dispatcher takes it too.
    const leaseUntil = new Date(Date.now() + this.policy.timeoutMs + 30_000);
    const claimed = await this.sql.begin(async (tx) => {
      await enqueueAccountEvent(tx, {
        id: eventId,
        accountId,
        type: 'webhook.test',
        data: { message: 'A test event from sipai: signatures verify with your endpoint secret.' },
        onlyEndpointId: id,
      });
      const [row] = await tx<ClaimedDelivery[]>`
        update webhook_deliveries d set attempts = 1, last_attempt_at = now(), next_attempt_at = ${leaseUntil}
        from webhook_events v
        where d.id = ${deliveryId} and v.id = d.event_id
        returning d.id, d.endpoint_id, d.event_id, d.attempts, v.type, v.version, v.account_id, v.call_id, v.at, v.data`;
      return row;
    });
    if (!claimed) throw new ApiError(500, 'internal', 'the test delivery was not written');
    await attemptDelivery(
      this.sql,
      {
        ...claimed,
        url: endpoint.url,
        secret: endpoint.secret,
        previous_secret: endpoint.previous_secret,
        previous_secret_expires_at: endpoint.previous_secret_expires_at,
      },
      this.policy,
      // A test is one attempt and does not count toward disabling the endpoint.
      { log: this.log, nowMs: Date.now, retry: false, countFailure: false },
    );
    return this.delivery(accountId, id, deliveryId);
  }

  async delivery(accountId: string, endpointId: string, deliveryId: string): Promise<WebhookDelivery> {
    const [row] = await this.sql<DeliveryRow[]>`
      select d.*, v.type from webhook_deliveries d join webhook_events v on v.id = d.event_id
      where d.id = ${deliveryId} and d.endpoint_id = ${endpointId} and d.account_id = ${accountId}`;
    if (!row) throw notFound('delivery', deliveryId);
    return toDelivery(row);
  }

  /** The endpoint's delivery log, newest first, optionally only one status. */
  async deliveries(
    accountId: string,
    endpointId: string,
    query: { limit?: number; cursor?: string; status?: 'pending' | 'delivered' | 'failed' },
  ) {
    await this.row(accountId, endpointId);
    const limit = query.limit ?? 20;
    const after = query.cursor ? decodeCursor(query.cursor) : null;
    const rows = await this.sql<DeliveryRow[]>`
      select d.*, v.type from webhook_deliveries d join webhook_events v on v.id = d.event_id
      where d.endpoint_id = ${endpointId} and d.account_id = ${accountId}
        ${query.status ? this.sql`and d.status = ${query.status}` : this.sql``}
        ${after ? this.sql`and (d.created_at, d.id) < (${after.at}, ${after.id})` : this.sql``}
      order by d.created_at desc, d.id desc
      limit ${limit + 1}`;
    return toPage(rows, limit, toDelivery, encodeCursor);
  }

  /** Attempts one delivery again from scratch (a new series of attempts), whatever its status. */
  async replay(accountId: string, endpointId: string, deliveryId: string): Promise<WebhookDelivery> {
    const rows = await this.sql`
      update webhook_deliveries set status = 'pending', attempts = 0, next_attempt_at = now()
      where id = ${deliveryId} and endpoint_id = ${endpointId} and account_id = ${accountId}
      returning id`;
    if (rows.length === 0) throw notFound('delivery', deliveryId);
    return this.delivery(accountId, endpointId, deliveryId);
  }

  /** Attempts every failed delivery of the endpoint again. */
  async replayFailed(accountId: string, endpointId: string): Promise<{ replayed: number }> {
    await this.row(accountId, endpointId);
    const rows = await this.sql`
      update webhook_deliveries set status = 'pending', attempts = 0, next_attempt_at = now()
      where endpoint_id = ${endpointId} and account_id = ${accountId} and status = 'failed'
      returning id`;
    return { replayed: rows.length };
  }
}
