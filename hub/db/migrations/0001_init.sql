-- The hub's data model. Every key carries the source: records of two sources never collide.
create extension if not exists pg_trgm;
create extension if not exists fuzzystrmatch;
create extension if not exists unaccent;
create extension if not exists citext;

-- One configured instance of a connector. The configuration itself lives in hub.config.yaml
-- (secrets stay in the environment); this row carries what the hub learns at run time.
create table source (
  name        text primary key,
  connector   text not null,
  schedule    text,
  created_at  timestamptz not null default now(),
  removed_at  timestamptz
);

-- Checkpoint of each stream, saved in the same transaction as the page of records it covers.
create table stream_state (
  source      text not null references source (name),
  stream      text not null,
  state       jsonb not null,
  updated_at  timestamptz not null default now(),
  primary key (source, stream)
);

create table sync_run (
  id            bigint generated always as identity primary key,
  source        text not null references source (name),
  status        text not null default 'queued' check (status in ('queued', 'running', 'succeeded', 'failed')),
  trigger       text not null check (trigger in ('schedule', 'api', 'cli', 'start', 'remap')),
  -- the cron tick that asked for this run; unique per source so several hub processes enqueue it once
  scheduled_for timestamptz,
  read          integer not null default 0,
  created       integer not null default 0,
  updated       integer not null default 0,
  unchanged     integer not null default 0,
  quarantined   integer not null default 0,
  progress      jsonb not null default '{}',
  error         text,
  queued_at     timestamptz not null default now(),
  started_at    timestamptz,
  finished_at   timestamptz
);
-- One active run per source: a second request finds the first.
create unique index sync_run_one_active on sync_run (source) where status in ('queued', 'running');
create unique index sync_run_one_per_tick on sync_run (source, scheduled_for) where scheduled_for is not null;
create index sync_run_by_source on sync_run (source, id desc);

-- Records exactly as received.
create table raw_record (
  id               bigint generated always as identity primary key,
  source           text not null references source (name),
  stream           text not null,
  external_id      text not null,
  data             jsonb not null,
  content_hash     text not null,
  first_seen_at    timestamptz not null default now(),
  last_seen_at     timestamptz not null default now(),
  -- when the content last changed: the default recency of its values
  changed_at       timestamptz not null default now(),
  last_run_id      bigint references sync_run (id),
  unique (source, stream, external_id)
);

-- Input that could not be read or mapped, with the reason. Nothing is dropped silently.
create table quarantine (
  id             bigint generated always as identity primary key,
  source         text not null references source (name),
  stream         text not null,
  external_id    text,
  line           integer,
  field          text,
  reason         text not null,
  stage          text not null check (stage in ('read', 'map')),
  payload        jsonb not null,
  raw_record_id  bigint references raw_record (id) on delete cascade,
  run_id         bigint references sync_run (id),
  created_at     timestamptz not null default now(),
  -- set when a later sync or remap loaded the record after all
  resolved_at    timestamptz
);
create index quarantine_open on quarantine (source, id) where resolved_at is null;
create unique index quarantine_open_per_record on quarantine (raw_record_id) where resolved_at is null;

-- The canonical form of one raw record (see openapi/schemas/canonical-record.schema.json).
create table canonical_record (
  raw_record_id  bigint primary key references raw_record (id) on delete cascade,
  source         text not null,
  data           jsonb not null,
  -- when its values were true at the source (mapped observed_at, else raw_record.changed_at)
  observed_at    timestamptz not null,
  mapped_at      timestamptz not null default now()
);

-- Normalised values that link records: email, phone, identifier.
create table match_key (
  raw_record_id  bigint not null references canonical_record (raw_record_id) on delete cascade,
  kind           text not null,
  value          text not null,
  primary key (kind, value, raw_record_id)
);
create index match_key_by_record on match_key (raw_record_id);

-- Interactions point at the source record, not at a golden id, so they survive re-clustering.
create table interaction (
  raw_record_id  bigint not null references canonical_record (raw_record_id) on delete cascade,
  ordinal        integer not null,
  kind           text not null,
  occurred_at    timestamptz not null,
  data           jsonb not null,
  primary key (raw_record_id, ordinal)
);
create index interaction_timeline on interaction (raw_record_id, occurred_at desc);

create sequence golden_record_seq;
create table golden_record (
  id           text primary key,
  -- merges keep the oldest golden record: the smallest seq survives
  seq          bigint not null unique,
  status       text not null default 'active' check (status in ('active', 'merged', 'retired')),
  merged_into  text references golden_record (id),
  data         jsonb not null default '{}',
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now()
);
create index golden_record_email on golden_record using gin ((data -> 'emails'));
create index golden_record_phone on golden_record using gin ((data -> 'phones'));
create index golden_record_updated on golden_record (updated_at, id) where status = 'active';

-- Which golden record a source record belongs to, over time. Never deleted, so any merge can be undone.
create table cluster_membership (
  id             bigint generated always as identity primary key,
  raw_record_id  bigint not null references raw_record (id) on delete cascade,
  golden_id      text not null references golden_record (id),
  valid_from     timestamptz not null default now(),
  valid_to       timestamptz,
  cause          text not null check (cause in ('rule', 'match', 'steward')),
  detail         jsonb not null default '{}'
);
create unique index cluster_membership_current on cluster_membership (raw_record_id) where valid_to is null;
create index cluster_membership_golden on cluster_membership (golden_id) where valid_to is null;

-- Steward decisions; read by the resolver on every run (used from the steward issue on).
create table match_constraint (
  id                   bigint generated always as identity primary key,
  kind                 text not null check (kind in ('must_link', 'cannot_link')),
  left_raw_record_id   bigint not null references raw_record (id) on delete cascade,
  right_raw_record_id  bigint not null references raw_record (id) on delete cascade,
  reason               text,
  actor                text not null,
  created_at           timestamptz not null default now(),
  withdrawn_at         timestamptz
);

create table pinned_value (
  id          bigint generated always as identity primary key,
  golden_id   text not null references golden_record (id),
  attribute   text not null,
  value       jsonb not null,
  reason      text,
  actor       text not null,
  created_at  timestamptz not null default now(),
  withdrawn_at timestamptz
);

-- Every value each golden record attribute could take, where it came from, and which one survived.
create table attribute_lineage (
  golden_id      text not null references golden_record (id),
  attribute      text not null,
  value          jsonb not null,
  raw_record_id  bigint not null references raw_record (id) on delete cascade,
  source         text not null,
  observed_at    timestamptz not null,
  survived       boolean not null
);
create index attribute_lineage_golden on attribute_lineage (golden_id, attribute);

-- Positions follow commit order: writers take the single counter row's lock, which they hold until commit.
create table change_log_counter (
  id        boolean primary key default true check (id),
  position  bigint not null
);
insert into change_log_counter values (true, 0);

create table change_log (
  position    bigint primary key,
  golden_id   text not null,
  kind        text not null check (kind in ('created', 'updated', 'merged', 'split', 'retired')),
  changed     jsonb not null default '[]',
  detail      jsonb not null default '{}',
  cause       text not null check (cause in ('run', 'decision', 'api')),
  cause_id    text,
  actor       text not null,
  created_at  timestamptz not null default now()
);
create index change_log_golden on change_log (golden_id, position);

create table api_key (
  id            bigint generated always as identity primary key,
  name          text not null,
  key_hash      text not null unique,
  scopes        text[] not null,
  created_at    timestamptz not null default now(),
  last_used_at  timestamptz,
  revoked_at    timestamptz
);
