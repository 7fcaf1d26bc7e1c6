-- Customer webhooks: endpoints an account registers, the public events recorded for it, and
-- the outbox of deliveries (one row per endpoint and event), written in the same transaction
-- as the event, so an event recorded is an event that will be delivered.

create table webhook_endpoints (
  id text primary key,
  account_id text not null references accounts(id) on delete cascade,
  url text not null,
  -- Event types this endpoint receives; empty: every event that is not opt-in.
  events text[] not null default '{}',
  description text not null default '',
  enabled boolean not null default true,
  -- Why the dispatcher disabled it (null when enabled, or disabled by the account).
  disabled_reason text,
  -- The signing secret (`whsec_…`). Kept as is: signing needs it, a hash would not do.
  secret text not null,
  -- The secret before the last rotation, still signing alongside until it expires.
  previous_secret text,
  previous_secret_expires_at timestamptz,
  -- Deliveries that failed for good in a row; any success resets it.
  consecutive_failures integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index webhook_endpoints_account_idx on webhook_endpoints (account_id, id);

-- Public events (core/events/catalogue.ts) of accounts with at least one matching endpoint.
-- The id derives from the event's content (core/events/from-core.ts): recording it twice
-- changes nothing.
create table webhook_events (
  id text primary key,
  account_id text not null references accounts(id) on delete cascade,
  type text not null,
  version integer not null,
  call_id text,
  at timestamptz not null,
  data jsonb not null,
  created_at timestamptz not null default now()
);

create table webhook_deliveries (
  id text primary key,
  endpoint_id text not null references webhook_endpoints(id) on delete cascade,
  account_id text not null references accounts(id) on delete cascade,
  event_id text not null references webhook_events(id) on delete cascade,
  status text not null default 'pending' check (status in ('pending', 'delivered', 'failed')),
  -- Attempts started (counted when claimed, so a dispatcher that dies mid-request still counts it).
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  last_attempt_at timestamptz,
  -- The receiver's status code of the last attempt (null: no answer).
  last_status integer,
  last_error text,
  delivered_at timestamptz,
  created_at timestamptz not null default now(),
  unique (endpoint_id, event_id)
);
-- The dispatcher's claim: pending rows, soonest due first.
create index webhook_deliveries_due_idx on webhook_deliveries (next_attempt_at) where status = 'pending';
-- The delivery log of an endpoint, newest first.
create index webhook_deliveries_endpoint_idx on webhook_deliveries (endpoint_id, created_at desc, id desc);
