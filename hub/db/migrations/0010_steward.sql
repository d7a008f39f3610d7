-- The data steward's decisions (hub/steward.ts). A decision is expressed only through match_constraint and
-- pinned_value rows that name it; undoing it withdraws those rows, so re-resolution recomputes the records
-- as if it had never been taken.
create table steward_decision (
  id              bigint generated always as identity primary key,
  kind            text not null check (kind in ('merge', 'keep_apart', 'defer', 'split', 'merge_customers', 'pin', 'unpin', 'choose')),
  review_item_id  text,
  golden_ids      text[] not null default '{}',
  raw_record_ids  bigint[] not null default '{}',
  attribute       text,
  value           jsonb,
  reason          text,
  actor           text not null,
  created_at      timestamptz not null default now(),
  undone_at       timestamptz,
  undone_by       text,
  undo_reason     text
);
create index steward_decision_created on steward_decision (created_at, id);
create index steward_decision_golden on steward_decision using gin (golden_ids);

-- decision_id: the decision that added the row; withdrawn_by: a later decision that replaced it (a merge after a
-- keep-apart, a new pin of the same attribute). Undoing that later decision puts the row back.
alter table match_constraint add column decision_id bigint references steward_decision (id),
  add column withdrawn_by bigint references steward_decision (id);
create index match_constraint_decision on match_constraint (decision_id) where decision_id is not null;
-- The resolvers read the active constraints of records.
create index match_constraint_left on match_constraint (left_raw_record_id) where withdrawn_at is null;
create index match_constraint_right on match_constraint (right_raw_record_id) where withdrawn_at is null;

alter table pinned_value add column decision_id bigint references steward_decision (id),
  add column withdrawn_by bigint references steward_decision (id);

-- A pair a steward put off stays out of the open queue until decided.
alter table review_item drop constraint review_item_status_check;
alter table review_item add constraint review_item_status_check check (status in ('open', 'settled', 'linked', 'rejected', 'deferred'));

-- Conflicts (hub/steward-sql.ts): two values agree when they say the same thing written differently — the same words
-- in any order, case, accents and punctuation aside ("SCHNEIDER, Lukas" = "Lukas Schneider"); objects (addresses,
-- organisations) agree when every field both of them fill agrees (a city alone agrees with the full address).
create function hub_normal_words(value text) returns text language sql stable parallel safe as $$
  select array_to_string(array(select w from regexp_split_to_table(lower(unaccent(value)), '[^a-z0-9]+') as w where w <> '' order by w), ' ')
$$;

create function hub_values_agree(a jsonb, b jsonb) returns boolean language sql stable parallel safe as $$
  select case when jsonb_typeof(a) = 'object' and jsonb_typeof(b) = 'object'
    then not exists (select 1 from jsonb_each_text(a) p join jsonb_each_text(b) q on q.key = p.key
                     where hub_normal_words(p.value) <> hub_normal_words(q.value))
    else hub_normal_words(a #>> '{}') = hub_normal_words(b #>> '{}') end
$$;
