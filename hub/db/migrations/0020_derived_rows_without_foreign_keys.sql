-- Rows derived from one source record and written with it (its match and blocking keys with its canonical form, its
-- values' lineage with its golden record) no longer check a foreign key each: a new record wrote about ten such rows,
-- and each check looked its parent up and locked it (PostgreSQL's CPU a record at 1,000 records/s: 0.76-0.80 ms
-- against 0.79-0.85, seven alternating runs). What their cascades did, the triggers below do when the parent goes.
-- Deleting records was slow too: the cascades from raw_record read the whole lineage and membership tables for each
-- record; the lineage trigger and the memberships' cascade now go through indexes (removing a source of 28,571
-- records from about 120,000: 10-21 s against about 16 minutes). Keys written apart from their canonical form (a
-- model's training, a full rebuild) for a record deleted meanwhile would stay behind inert: candidates are read
-- through canonical_record.
alter table attribute_lineage drop constraint attribute_lineage_raw_record_id_fkey;
alter table block_key drop constraint block_key_raw_record_id_fkey;
alter table match_key drop constraint match_key_raw_record_id_fkey;

-- A record's keys go with its canonical form (deleted when the record is quarantined, removed or erased).
create function hub_delete_record_keys() returns trigger language plpgsql as $$
begin
  delete from match_key where raw_record_id = any(array(select raw_record_id from old_rows));
  delete from block_key where raw_record_id = any(array(select raw_record_id from old_rows));
  return null;
end $$;
create trigger canonical_record_keys after delete on canonical_record
  referencing old table as old_rows for each statement execute function hub_delete_record_keys();

-- Memberships by record, current and past: the foreign key's cascade from raw_record found a deleted record's
-- memberships by reading the whole table (the partial indexes do not serve it), about 10 ms a record at 100,000.
create index cluster_membership_record on cluster_membership (raw_record_id);
drop index cluster_membership_past;

-- A record's values are in the lineage of the golden records it is or was a member of: found through them before its
-- memberships go with it (attribute_lineage has no index by record; the cascade read the whole table for each record).
create function hub_delete_record_lineage() returns trigger language plpgsql as $$
begin
  delete from attribute_lineage
  where raw_record_id = old.id and golden_id = any(array(select golden_id from cluster_membership where raw_record_id = old.id));
  return old;
end $$;
create trigger raw_record_lineage before delete on raw_record for each row execute function hub_delete_record_lineage();
