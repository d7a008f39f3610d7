-- Probabilistic matching (identity-resolution/probabilistic-matcher.ts).

-- The blocking keys of each canonical record ("rule:key"): records sharing a key are compared.
create table block_key (
  raw_record_id  bigint not null references canonical_record (raw_record_id) on delete cascade,
  key            text not null,
  primary key (key, raw_record_id)
);
create index block_key_by_record on block_key (raw_record_id);

-- Trained Fellegi–Sunter models; the newest one of the configuration's hash scores pairs.
create table match_model (
  id           bigint generated always as identity primary key,
  config_hash  text not null,
  kind         text not null check (kind in ('em', 'prior')),
  model        jsonb not null,
  records      integer not null,
  report       jsonb not null default '{}',
  trained_at   timestamptz not null default now()
);
create index match_model_latest on match_model (config_hash, id desc);

-- Pairs between the thresholds (and pairs the chaining guard refused): the steward's review queue.
create table review_item (
  id                   bigint generated always as identity primary key,
  left_raw_record_id   bigint not null references raw_record (id) on delete cascade,
  right_raw_record_id  bigint not null references raw_record (id) on delete cascade,
  probability          double precision not null,
  match_weight         double precision not null,
  reason               text not null,
  explanation          jsonb not null,
  status               text not null default 'open' check (status in ('open', 'settled', 'linked', 'rejected')),
  created_at           timestamptz not null default now(),
  updated_at           timestamptz not null default now(),
  check (left_raw_record_id < right_raw_record_id),
  unique (left_raw_record_id, right_raw_record_id)
);
create index review_item_open on review_item (status, id);

-- The matcher the resolver uses (written from hub.config.yaml `resolution.matcher` at boot); no row: deterministic.
create table resolution_setting (
  id        boolean primary key default true check (id),
  matcher   text not null check (matcher in ('deterministic', 'probabilistic')),
  settings  jsonb not null default '{}'
);
