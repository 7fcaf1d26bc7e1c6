-- Inbound triggers: a CRM or a form starts an outbound call (or adds a campaign contact) by
-- POSTing to /webhooks/triggers/{id}, signed with the trigger's own Standard Webhooks secret.

create table triggers (
  id text primary key,
  account_id text not null references accounts(id) on delete cascade,
  name text not null,
  action text not null check (action in ('call', 'campaign_contact')),
  -- A `call` trigger: which agent talks, the caller id, the provider placing the call. The agent
  -- is not a foreign key: deleting an agent is not blocked by its triggers, which then refuse
  -- to fire, naming it.
  agent_id text,
  from_number text,
  provider text check (provider in ('jambonz', 'twilio')),
  -- A `campaign_contact` trigger: the campaign contacts are added to.
  campaign_id text references campaigns(id) on delete cascade,
  enabled boolean not null default true,
  -- The signing secret (`whsec_…`). Kept as is: verifying needs it, a hash would not do.
  secret text not null,
  -- The secret before the last rotation, still accepted until it expires.
  previous_secret text,
  previous_secret_expires_at timestamptz,
  last_fired_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (action <> 'call' or (agent_id is not null and from_number is not null and provider is not null)),
  check (action <> 'campaign_contact' or campaign_id is not null)
);
create index triggers_account_idx on triggers (account_id, id);

-- `webhook-id`s a trigger accepted, remembered past the signature's tolerance window so a
-- replayed request is refused on every control node. Rows go once `expires_at` has passed.
create table trigger_messages (
  trigger_id text not null references triggers(id) on delete cascade,
  message_id text not null,
  received_at timestamptz not null,
  expires_at timestamptz not null,
  primary key (trigger_id, message_id)
);
create index trigger_messages_expiry_idx on trigger_messages (expires_at);
