-- The API's own tables and indexes: name search, change-log retention, sync-failure events, webhooks, idempotency keys.
-- (0002 is reserved for the matcher; migrations apply every pending file, whatever the order they arrive in.)

-- Name search. unaccent is only stable, so these immutable wrappers name the dictionary explicitly and can back indexes.
create function hub_name_norm(value text) returns text language sql immutable parallel safe
  return trim(regexp_replace(lower(public.unaccent('public.unaccent'::regdictionary, coalesce(value, ''))), '[^[:alnum:]]+', ' ', 'g'));

-- The letters of each word in order ("jonh smtih" → "hjno himst"): typed transpositions, which trigrams punish hard
-- (similarity('jonh smtih', 'john smith') is 0.22), compare equal on this key.
create function hub_name_key(value text) returns text language sql immutable parallel safe
begin atomic
  select coalesce(string_agg(sorted, ' ' order by ord), '') from (
    select ord, (select string_agg(ch, '' order by ch collate "C") from regexp_split_to_table(word, '') as ch) as sorted
    from regexp_split_to_table(value, ' ') with ordinality as w(word, ord) where word <> '') as words;
end;

-- The name a person is searched by: given and family name, else the full name; normalised.
create function hub_customer_name(data jsonb) returns text language sql immutable parallel safe
  return hub_name_norm(coalesce(nullif(concat_ws(' ', data ->> 'given_name', data ->> 'family_name'), ''), data ->> 'full_name'));

create index golden_record_name_trgm on golden_record using gin (hub_customer_name(data) gin_trgm_ops) where status = 'active';
create index golden_record_name_key_trgm on golden_record using gin (hub_name_key(hub_customer_name(data)) gin_trgm_ops) where status = 'active';
create index golden_record_organisation_trgm on golden_record using gin (hub_name_norm(data #>> '{organisation,name}') gin_trgm_ops) where status = 'active';

-- Change-log retention: the highest position pruned so far. A reader asking for changes after an older position
-- would miss some, so the API answers 410 with this position as the oldest valid cursor.
create table change_log_horizon (
  id              boolean primary key default true check (id),
  pruned_through  bigint not null default 0,
  pruned_at       timestamptz
);
insert into change_log_horizon values (true, 0, null);

-- Failed sync runs as events in commit order (the change log's counter scheme), for webhooks. A trigger, so every
-- path that fails a run (sync, remap, a crashed worker's cleanup) emits one.
create table run_event_counter (
  id        boolean primary key default true check (id),
  position  bigint not null
);
insert into run_event_counter values (true, 0);

create table run_event (
  position    bigint primary key,
  kind        text not null check (kind in ('run.failed')),
  run_id      bigint not null references sync_run (id) on delete cascade,
  created_at  timestamptz not null default now()
);

create function hub_run_failed_event() returns trigger language plpgsql as $$
begin
  if new.status = 'failed' and (tg_op = 'INSERT' or old.status is distinct from 'failed') then
    with next as (update run_event_counter set position = position + 1 returning position)
    insert into run_event (position, kind, run_id) select position, 'run.failed', new.id from next;
  end if;
  return null;
end;
$$;
create trigger sync_run_failed after insert or update of status on sync_run for each row execute function hub_run_failed_event();

-- Webhook subscriptions. The secret is kept as is because it must sign every delivery; the API shows it once.
create table webhook_subscription (
  id              bigint generated always as identity primary key,
  url             text not null,
  events          text[] not null,
  description     text,
  secret          text not null,
  status          text not null default 'active' check (status in ('active', 'paused')),
  -- the last change-log position and run-event position this subscription has handled (delivered or skipped)
  change_cursor   bigint not null,
  run_cursor      bigint not null,
  -- one delivering process at a time per subscription, without holding a connection: a lease that expires
  lease_owner     text,
  lease_until     timestamptz,
  created_by      text not null,
  created_at      timestamptz not null default now(),
  paused_at       timestamptz
);

create table webhook_delivery (
  id               bigint generated always as identity primary key,
  subscription_id  bigint not null references webhook_subscription (id) on delete cascade,
  stream           text not null check (stream in ('changes', 'runs')),
  first_position   bigint not null,
  last_position    bigint not null,
  event_count      integer not null,
  -- the exact body sent, so retries and redeliveries send the same bytes (only the signature's timestamp changes)
  body             text not null,
  status           text not null default 'pending' check (status in ('pending', 'succeeded', 'failed')),
  attempts         integer not null default 0,
  next_attempt_at  timestamptz not null default now(),
  last_attempt_at  timestamptz,
  response_status  integer,
  error            text,
  created_at       timestamptz not null default now(),
  delivered_at     timestamptz
);
create index webhook_delivery_open on webhook_delivery (subscription_id, id) where status <> 'succeeded';
create index webhook_delivery_by_subscription on webhook_delivery (subscription_id, id desc);

-- Idempotency keys of POST requests, per API key: the first response is kept and replayed.
create table idempotency_key (
  api_key_id   bigint not null references api_key (id) on delete cascade,
  key          text not null,
  fingerprint  text not null,
  status_code  integer,
  headers      jsonb,
  body         text,
  created_at   timestamptz not null default now(),
  primary key (api_key_id, key)
);
create index idempotency_key_created on idempotency_key (created_at);
