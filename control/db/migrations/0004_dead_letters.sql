-- Stream entries a worker could not process: Postgres rejected them as data (bad encoding, a
-- constraint, invalid JSON) on every attempt. They are acked on the stream so the entries after
-- them keep flowing, and kept here, whole, to be looked at and replayed. `payload` is the
-- entry's fields as JSON text (JSON escapes NUL and lone surrogates, so text always accepts it,
-- where jsonb would refuse the very characters that may have caused the failure).
create table dead_letters (
  id bigint generated always as identity primary key,
  stream text not null,
  consumer_group text not null,
  entry_id text not null,
  consumer text not null,
  payload text not null,
  error text not null,
  attempts integer not null check (attempts >= 1),
  created_at timestamptz not null default now(),
  -- An entry dead-lettered twice (the ack after the first was lost) stays one row.
  unique (stream, consumer_group, entry_id)
);
create index dead_letters_created_idx on dead_letters (created_at desc);
