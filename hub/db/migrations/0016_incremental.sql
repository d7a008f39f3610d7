-- A transaction marks a customer's document stale once (migration 0013). Its later statements find the row written by
-- the transaction itself (its xmin) and leave it: a resolver's pass fires the triggers five or six times for the same
-- customers, and each update wrote a new row version with its index entries. One raised generation is enough to keep a
-- concurrent reader's document out: the reader compares the generation it read with the one committed.
create or replace function hub_stale_documents(golden_ids text[]) returns void language sql as $$
  insert into customer_document as d (golden_id, generation)
  select id, 1 from (select distinct unnest(golden_ids) as id) ids where id is not null order by id
  on conflict (golden_id) do update set generation = d.generation + 1, body = null
    where d.xmin <> pg_current_xact_id()::xid
$$;

-- The memberships a record has left, by record: a component that keeps no golden record looks up the one its members
-- belonged to before a merge (identity-resolution/sql.ts previousMergedGoldens), which otherwise read the whole table.
create index cluster_membership_past on cluster_membership (raw_record_id) where valid_to is not null;
