-- Survivorship (identity-resolution/survivorship.ts): steward pins in the lineage, the configured rules,
-- and golden organisation records (identity-resolution/organisations.ts).

-- A pinned value that no source holds is a lineage entry of the steward's: no raw record, the pin instead.
alter table attribute_lineage alter column raw_record_id drop not null;
alter table attribute_lineage add column pinned_value_id bigint references pinned_value (id) on delete cascade;
-- The rule that chose a surviving value (pinned, source_priority, most_recent, most_frequent, most_complete, consent).
alter table attribute_lineage add column rule text;
alter table attribute_lineage add constraint attribute_lineage_has_origin check (raw_record_id is not null or pinned_value_id is not null);
create index pinned_value_active on pinned_value (golden_id, attribute) where withdrawn_at is null;

-- hub.config.yaml `resolution.survivorship`, written at boot where every process's resolver reads it; no row: most recent.
create table survivorship_setting (
  id     boolean primary key default true check (id),
  rules  jsonb not null
);

-- Golden organisation records (B2B accounts), built from the organisation parts of canonical records.
create sequence organisation_seq;
create table organisation (
  id           text primary key,
  seq          bigint not null unique,
  status       text not null default 'active' check (status in ('active', 'merged', 'retired')),
  merged_into  text references organisation (id),
  -- name, names, domains, identifiers (identity-resolution/organisations.ts OrganisationData)
  data         jsonb not null default '{}',
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now()
);

-- The keys of each record's organisation part: records sharing one are one organisation (normalised name, domain, VAT, registration number).
create table organisation_key (
  raw_record_id  bigint not null references canonical_record (raw_record_id) on delete cascade,
  kind           text not null check (kind in ('name', 'domain', 'vat', 'registration')),
  value          text not null,
  primary key (kind, value, raw_record_id)
);
create index organisation_key_by_record on organisation_key (raw_record_id);

-- Which organisation a record's organisation part belongs to, over time (as cluster_membership for customers).
create table organisation_membership (
  id               bigint generated always as identity primary key,
  raw_record_id    bigint not null references raw_record (id) on delete cascade,
  organisation_id  text not null references organisation (id),
  valid_from       timestamptz not null default now(),
  valid_to         timestamptz,
  detail           jsonb not null default '{}'
);
create unique index organisation_membership_current on organisation_membership (raw_record_id) where valid_to is null;
create index organisation_membership_organisation on organisation_membership (organisation_id) where valid_to is null;

-- The people of an organisation: golden person records name it in data.organisation_id.
create index golden_record_organisation_id on golden_record ((data ->> 'organisation_id')) where status = 'active';
