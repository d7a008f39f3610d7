-- Write-back: golden values sent back to the sources (hub/write-back.ts).
-- Per source: how far the change log has been planned, and the kill switch set through the API
-- (null: follow hub.config.yaml; a value here wins over the configuration).
create table write_back_state (
  source              text primary key references source (name) on delete cascade,
  position            bigint not null default 0,
  enabled             boolean,
  enabled_changed_by  text,
  enabled_changed_at  timestamptz
);

-- Every write to one record: the values sent, and what came of it.
create table write_back_log (
  id             bigint generated always as identity primary key,
  source         text not null references source (name) on delete cascade,
  external_id    text not null,
  golden_id      text not null,
  job_id         text,
  request        jsonb not null,
  outcome        text not null check (outcome in ('ok', 'error')),
  error          text,
  response       jsonb,
  written_at     timestamptz not null default now()
);
create index write_back_log_by_source on write_back_log (source, id desc);

-- The last value the hub wrote to each attribute of a record, as a hash: when the next sync reads it back
-- it is an echo of our own write, not news, and no write is planned for it again.
create table write_back_echo (
  source       text not null references source (name) on delete cascade,
  external_id  text not null,
  attribute    text not null,
  value_hash   text not null,
  written_at   timestamptz not null default now(),
  primary key (source, external_id, attribute)
);
