-- Campaigns: outbound calling lists with a schedule, pacing, concurrency and retries.
create table campaigns (
  id text collate "C" primary key check (id ~ '^cmp_[0-9a-z]{26}$'),
  account_id text not null references accounts(id) on delete cascade,
  name text not null check (length(name) between 1 and 100),
  agent_id text collate "C" not null,
  provider text not null check (provider in ('jambonz', 'twilio')),
  caller_id text not null check (caller_id ~ '^\+[1-9][0-9]{1,14}$'),
  status text not null default 'draft'
    check (status in ('draft', 'running', 'paused', 'completed', 'canceled')),
  time_zone text not null,
  -- { "daysOfWeek": ["mon", …], "startTime": "09:00", "endTime": "17:30" } or null (any time).
  schedule jsonb check (schedule is null or jsonb_typeof(schedule) = 'object'),
  calls_per_second double precision not null check (calls_per_second > 0),
  max_concurrent_calls integer not null check (max_concurrent_calls >= 1),
  max_attempts integer not null check (max_attempts >= 1),
  retry_delay_sec integer not null check (retry_delay_sec >= 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  started_at timestamptz,
  ended_at timestamptz
);
create index campaigns_account_idx on campaigns (account_id, id);
create index campaigns_running_idx on campaigns (id) where status = 'running';

-- A campaign's contacts, in list order (`seq`). A contact is claimed (`dialing`, with the call
-- id it will be dialled under) in a committed transaction BEFORE the provider is asked, and
-- `dial_confirmed` once the provider accepted: a claim left unconfirmed by a crash becomes
-- `unknown`, never dialled again automatically.
create table campaign_contacts (
  campaign_id text collate "C" not null references campaigns(id) on delete cascade,
  seq integer not null check (seq >= 1),
  phone_number text not null check (phone_number ~ '^\+[1-9][0-9]{1,14}$'),
  variables jsonb check (variables is null or jsonb_typeof(variables) = 'object'),
  status text not null default 'pending'
    check (status in ('pending', 'dialing', 'retrying', 'completed', 'failed', 'unknown', 'canceled')),
  attempts integer not null default 0 check (attempts >= 0),
  next_attempt_at timestamptz,
  call_id text collate "C",
  dial_confirmed boolean not null default false,
  claimed_by text,
  claimed_at timestamptz,
  last_outcome text,
  updated_at timestamptz not null default now(),
  primary key (campaign_id, seq),
  unique (campaign_id, phone_number)
);
create index campaign_contacts_due_idx on campaign_contacts (campaign_id, status, next_attempt_at, seq);
create index campaign_contacts_call_idx on campaign_contacts (call_id) where call_id is not null;
create index campaign_contacts_dialing_idx on campaign_contacts (claimed_at) where status = 'dialing';

-- Calls: one row per call we placed or core answered. `id` is our call id: `cal_…` for calls
-- placed through the API or a campaign, the provider's call id for inbound calls. The recorder
-- creates rows it has not seen from core's event stream, so `account_id` is null for a call
-- whose agent belongs to no account (e.g. the built-in `echo` agent): kept, never served.
create table calls (
  id text collate "C" primary key check (length(id) between 1 and 128),
  account_id text references accounts(id) on delete cascade,
  provider text check (provider in ('jambonz', 'twilio', 'telnyx', 'native')),
  provider_call_id text,
  agent_id text,
  campaign_id text collate "C",
  direction text check (direction in ('inbound', 'outbound')),
  from_number text,
  to_number text,
  status text not null default 'queued'
    check (status in ('queued', 'ringing', 'in-progress', 'completed', 'failed', 'busy', 'no-answer', 'canceled')),
  -- When the call was placed (outbound) or reached core (inbound).
  started_at timestamptz not null default now(),
  answered_at timestamptz,
  ended_at timestamptz,
  end_reason text,
  latency jsonb,
  updated_at timestamptz not null default now()
);
-- Lists: newest first within an account, paged on (started_at, id).
create index calls_account_started_idx on calls (account_id, started_at desc, id desc);
create index calls_account_campaign_idx on calls (account_id, campaign_id, started_at desc) where campaign_id is not null;
create index calls_account_agent_idx on calls (account_id, agent_id, started_at desc);

-- A call's timeline, from the global stream and the call's own stream (copied at call end).
-- The same event reaches us through both, and a stream delivers at least once: `fingerprint`
-- (a hash of the event's fields, plus `#n` for the n-th identical event of a call) makes every
-- copy after the first a no-op. `stream_ms`/`stream_seq` are the event's id in the call's own
-- stream, once copied from it: the exact order of events within one millisecond.
create table call_events (
  call_id text collate "C" not null references calls(id) on delete cascade,
  fingerprint text not null,
  type text not null,
  at timestamptz not null,
  t_ms integer,
  data jsonb,
  stream_ms bigint,
  stream_seq integer,
  recorded_at timestamptz not null default now(),
  primary key (call_id, fingerprint)
);
create index call_events_order_idx on call_events (call_id, at, t_ms);
