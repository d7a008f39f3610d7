-- Privacy and reversibility: erasure (tombstones, audit), source removal, customer value, encrypted webhook secrets.
-- (0002 is reserved for the matcher, 0005 for ingestion.)

-- An erased golden record keeps its id (so merged-away ids and old change-log entries still lead somewhere) and nothing else.
alter table golden_record drop constraint golden_record_status_check;
alter table golden_record add constraint golden_record_status_check check (status in ('active', 'merged', 'retired', 'erased'));

-- The change log says when a person was erased, and when a source's removal recomputed a golden record.
alter table change_log drop constraint change_log_kind_check;
alter table change_log add constraint change_log_kind_check check (kind in ('created', 'updated', 'merged', 'split', 'retired', 'erased'));
alter table change_log drop constraint change_log_cause_check;
alter table change_log add constraint change_log_cause_check check (cause in ('run', 'decision', 'api', 'source_removal'));

-- Who erased whom and when, and how much went. No personal data: counts and the golden id only.
create table erasure (
  id          bigint generated always as identity primary key,
  golden_id   text not null references golden_record (id),
  actor       text not null,
  erased_at   timestamptz not null default now(),
  removed     jsonb not null
);

-- What stops an erased person's records from coming back: the key of each erased source record, and the match keys it
-- carried, as SHA-256 hashes. A sync or a push that brings a record with a tombstoned key skips it (counted as `skipped`).
create table erasure_tombstone (
  erasure_id  bigint not null references erasure (id),
  kind        text not null check (kind in ('record', 'content', 'email', 'phone', 'identifier')),
  -- record: sha256(source \0 stream \0 external_id); content: source \0 raw content hash; others: sha256(normalised value)
  key_hash    text not null,
  primary key (kind, key_hash, erasure_id)
);

-- Records skipped because they were erased, per run.
alter table sync_run add column skipped integer not null default 0;

-- Customer value: per golden record, the order figures that its RFM segment needs, kept current by the save boundary
-- (hub/customer-value.ts). Everything else of the value is computed on read from the interactions.
create table customer_value (
  golden_id        text primary key references golden_record (id),
  first_order_at   timestamptz,
  last_order_at    timestamptz,
  order_count      integer not null,
  updated_at       timestamptz not null default now()
);
create index customer_value_last_order on customer_value (last_order_at);

-- The RFM segment rule (documented in the README). One definition, used by the list filter and the customer resource.
create function hub_rfm_segment(first_order_at timestamptz, last_order_at timestamptz, order_count integer, at timestamptz)
  returns text language sql immutable parallel safe
  return case
    when coalesce(order_count, 0) = 0 or last_order_at is null then 'prospect'
    when last_order_at >= at - interval '90 days' and order_count >= 3 then 'champion'
    when last_order_at >= at - interval '90 days' and first_order_at >= at - interval '90 days' then 'new'
    when last_order_at >= at - interval '180 days' and order_count >= 2 then 'loyal'
    when last_order_at >= at - interval '180 days' then 'active'
    when last_order_at >= at - interval '365 days' and order_count >= 2 then 'at_risk'
    else 'lapsed'
  end;

-- Webhook secrets are stored encrypted from now on (`enc:v1:` + AES-256-GCM); rows written before stay readable.
comment on column webhook_subscription.secret is 'enc:v1:<iv>:<tag>:<ciphertext> (base64url), AES-256-GCM with HUB_ENCRYPTION_KEY; plain text only for rows older than 0004';
