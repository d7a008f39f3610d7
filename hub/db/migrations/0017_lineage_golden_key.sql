-- Lineage rows are written by the resolver alone, for the golden records it has just written or locked, and golden
-- records are never deleted (they are merged, retired or erased). The foreign key to golden_record checked every row
-- a resolution pass writes (about 10 µs each, a third of writing the row: a record joining a customer writes ten or
-- more) inside the section that resolves one group at a time. The key to raw_record stays: erasure relies on its cascade.
alter table attribute_lineage drop constraint attribute_lineage_golden_id_fkey;
