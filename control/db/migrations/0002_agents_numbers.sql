-- Agents: the current configuration of each agent (jsonb, validated by the API), its version
-- counter, and a copy of every saved configuration in agent_versions. Ids are time-ordered
-- (`agt_` + 26 base32 characters) and compared bytewise (collate "C"), so lists page on them.
create table agents (
  id text collate "C" primary key check (id ~ '^agt_[0-9a-z]{26}$'),
  account_id text not null references accounts(id) on delete cascade,
  name text not null check (length(name) between 1 and 100),
  config jsonb not null check (jsonb_typeof(config) = 'object' and config->>'name' = name),
  version integer not null default 1 check (version >= 1),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- Lets numbers reference (agent, account) together: a number cannot point across accounts.
  unique (id, account_id)
);
create index agents_account_idx on agents (account_id, id);

create table agent_versions (
  agent_id text collate "C" not null references agents(id) on delete cascade,
  version integer not null check (version >= 1),
  account_id text not null references accounts(id) on delete cascade,
  config jsonb not null check (jsonb_typeof(config) = 'object'),
  created_at timestamptz not null default now(),
  primary key (agent_id, version)
);

-- Phone numbers routed to an agent of the same account. One row per number, across accounts:
-- a call to it can reach only one agent.
create table numbers (
  id text collate "C" primary key check (id ~ '^num_[0-9a-z]{26}$'),
  account_id text not null references accounts(id) on delete cascade,
  phone_number text not null unique check (phone_number ~ '^\+[1-9][0-9]{1,14}$'),
  provider text not null check (provider in ('jambonz', 'twilio', 'telnyx')),
  agent_id text collate "C" not null,
  label text check (label is null or length(label) between 1 and 100),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- No action (checked at the end of the statement): deleting an agent that a number routes to
  -- fails, while deleting a whole account cascades to both.
  foreign key (agent_id, account_id) references agents (id, account_id)
);
create index numbers_account_idx on numbers (account_id, id);
create index numbers_agent_idx on numbers (agent_id);
