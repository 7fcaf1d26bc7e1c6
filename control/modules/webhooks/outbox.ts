import { createHash, randomUUID } from 'node:crypto';
import {
  EVENT_TYPES,
  EVENT_VERSION,
  type EventDefinition,
  type EventType,
} from '../../../core/events/catalogue.ts';
import type { MappedEvent } from '../../../core/events/from-core.ts';
import { asJson, type Queryable } from '../../db/index.ts';

/**
 * The outbox: a public event and one delivery row per endpoint that wants it, written by the
 * caller's transaction (the recorder's, an API change's), so the event and its deliveries
 * commit or vanish together. Writing the same event twice changes nothing: the event id is
 * derived from its content and deliveries are unique per endpoint and event.
 */

/** A fresh event id (`evt_…`), for an event written once (inside the transaction of its change). */
export function newEventId(): string {
  return `evt_${randomUUID().replace(/-/g, '')}`;
}

/** The id of the delivery of `eventId` to `endpointId`: derived, so a rewrite finds the same row. */
export function deliveryIdOf(endpointId: string, eventId: string): string {
  return `dlv_${createHash('md5').update(`${endpointId}${eventId}`).digest('hex').slice(0, 26)}`;
}

function optInOf(type: EventType): boolean {
  return (EVENT_TYPES[type] as EventDefinition).optIn === true;
}

/**
 * Whether any endpoint is enabled at all: a deployment without webhooks pays one cheap query
 * per batch, not one per event.
 */
export async function anyEndpointEnabled(db: Queryable): Promise<boolean> {
  const [row] = await db<{ any: boolean }[]>`
    select exists (select 1 from webhook_endpoints where enabled) as any`;
  return row?.any === true;
}

/**
 * Writes a call's event for the account that owns the call (its row in `calls` must exist) and
 * its deliveries; nothing when no enabled endpoint of that account wants it. Returns the
 * deliveries created.
 */
export async function enqueueCallEvent(db: Queryable, event: MappedEvent): Promise<number> {
  const rows = await db`
    with acct as (select account_id from calls where id = ${event.callId}),
    targets as (
      select e.id as endpoint_id, e.account_id from webhook_endpoints e join acct using (account_id)
      where e.enabled and case when cardinality(e.events) = 0 then not ${optInOf(event.type)}
                               else ${event.type} = any(e.events) end
    ),
    ev as (
      insert into webhook_events (id, account_id, type, version, call_id, at, data)
      select ${event.id}, account_id, ${event.type}, ${EVENT_VERSION}, ${event.callId}, ${event.at},
             ${db.json(asJson(event.data))}
      from acct where exists (select 1 from targets)
      on conflict (id) do nothing
      returning id
    )
    insert into webhook_deliveries (id, endpoint_id, account_id, event_id)
    select 'dlv_' || substr(md5(t.endpoint_id || ev.id), 1, 26), t.endpoint_id, t.account_id, ev.id
    from ev cross join targets t
    on conflict (endpoint_id, event_id) do nothing
    returning id`;
  return rows.length;
}

/**
 * Writes one of control's own events (an agent changed, a campaign completed) for `accountId`,
 * to every enabled endpoint of the account that wants it, or to `onlyEndpointId` alone (a test
 * event). `id` is the event's id; callers that may write it twice derive it from its content.
 */
export async function enqueueAccountEvent(
  db: Queryable,
  event: {
    id: string;
    accountId: string;
    type: EventType;
    at?: Date;
    data: Record<string, unknown>;
    onlyEndpointId?: string;
  },
): Promise<number> {
  const only = event.onlyEndpointId ?? null;
  const rows = await db`
    with targets as (
      select e.id as endpoint_id, e.account_id from webhook_endpoints e
      where e.account_id = ${event.accountId}
        and case when ${only}::text is not null then e.id = ${only}::text
                 else e.enabled and case when cardinality(e.events) = 0 then not ${optInOf(event.type)}
                                         else ${event.type} = any(e.events) end end
    ),
    ev as (
      insert into webhook_events (id, account_id, type, version, call_id, at, data)
      select ${event.id}, ${event.accountId}, ${event.type}, ${EVENT_VERSION}, null, ${event.at ?? new Date()},
             ${db.json(asJson(event.data))}
      where exists (select 1 from targets)
      on conflict (id) do nothing
      returning id
    )
    insert into webhook_deliveries (id, endpoint_id, account_id, event_id)
    select 'dlv_' || substr(md5(t.endpoint_id || ev.id), 1, 26), t.endpoint_id, t.account_id, ev.id
    from ev cross join targets t
    on conflict (endpoint_id, event_id) do nothing
    returning id`;
  return rows.length;
}

/** The body of a webhook request: the event's envelope (core/events/catalogue.ts), as JSON. */
export function envelopeBody(row: {
  event_id: string;
  type: string;
  version: number;
  account_id: string;
  call_id: string | null;
  at: Date;
  data: Record<string, unknown>;
}): string {
  return JSON.stringify({
    id: row.event_id,
    type: row.type,
    version: row.version,
    accountId: row.account_id,
    callId: row.call_id,
    at: row.at.toISOString(),
    data: row.data,
  });
}
