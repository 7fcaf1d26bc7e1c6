-- Tenancy root: every row the API serves belongs to one account.
create table accounts (
  id text primary key,
  name text not null,
  created_at timestamptz not null default now()
);

-- API keys: only a hash is stored; the prefix finds the row, the hash proves the key.
create table api_keys (
  id text primary key,
  account_id text not null references accounts(id) on delete cascade,
  name text not null,
  prefix text not null unique,
  key_hash text not null,
  role text not null default 'member' check (role in ('admin', 'member')),
  created_at timestamptz not null default now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);
create index api_keys_account_idx on api_keys (account_id);
