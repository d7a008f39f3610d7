-- The answer of `GET /v1/customers/{id}`, kept ready (hub/customer-documents.ts): one primary-key read serves it.
-- Every write that changes what the answer holds makes the document stale in the same transaction and raises its
-- generation: the triggers below for the golden record, its lineage and its members; refreshCustomerValue
-- (hub/customer-value.ts) for the interactions, which change under the resolver's lock like the rest, so that
-- writers take these rows' locks in one order (golden id) and never before that lock. A reader
-- or the builder stores a document it computed only if the generation is still the one it read before computing, so
-- a document computed before a concurrent write never replaces the write's stale mark.
create table customer_document (
  golden_id    text primary key references golden_record (id) on delete cascade,
  generation   bigint not null default 0,
  -- The serialized JSON; null: stale (to be rebuilt).
  body         text,
  -- What else shaped the body (the reporting currency config, the hub version): another variant is not served.
  variant      text,
  -- Values in the body that count days (recency, ticket age, the 365-day window) change at this time.
  valid_until  timestamptz
);
create index customer_document_stale on customer_document (golden_id) where body is null;
create index customer_document_valid_until on customer_document (valid_until);

create function hub_stale_documents(golden_ids text[]) returns void language sql as $$
  insert into customer_document as d (golden_id, generation)
  select id, 1 from (select distinct unnest(golden_ids) as id) ids where id is not null order by id
  on conflict (golden_id) do update set generation = d.generation + 1, body = null
$$;

-- Statement triggers with transition tables: one call per statement, whatever its number of rows.
create function hub_stale_documents_by_golden_id() returns trigger language plpgsql as $$
begin
  if tg_op in ('INSERT', 'UPDATE') then perform hub_stale_documents(array(select golden_id from new_rows)); end if;
  if tg_op in ('UPDATE', 'DELETE') then perform hub_stale_documents(array(select golden_id from old_rows)); end if;
  return null;
end $$;

create function hub_stale_documents_by_id() returns trigger language plpgsql as $$
begin
  perform hub_stale_documents(array(select id from new_rows));
  return null;
end $$;

-- A trigger with transition tables serves one event, hence one trigger per event.
create trigger golden_record_documents after update on golden_record
  referencing new table as new_rows for each statement execute function hub_stale_documents_by_id();

create trigger cluster_membership_documents_insert after insert on cluster_membership
  referencing new table as new_rows for each statement execute function hub_stale_documents_by_golden_id();
create trigger cluster_membership_documents_update after update on cluster_membership
  referencing old table as old_rows new table as new_rows for each statement execute function hub_stale_documents_by_golden_id();
create trigger cluster_membership_documents_delete after delete on cluster_membership
  referencing old table as old_rows for each statement execute function hub_stale_documents_by_golden_id();

create trigger attribute_lineage_documents_insert after insert on attribute_lineage
  referencing new table as new_rows for each statement execute function hub_stale_documents_by_golden_id();
create trigger attribute_lineage_documents_update after update on attribute_lineage
  referencing old table as old_rows new table as new_rows for each statement execute function hub_stale_documents_by_golden_id();
create trigger attribute_lineage_documents_delete after delete on attribute_lineage
  referencing old table as old_rows for each statement execute function hub_stale_documents_by_golden_id();

-- Existing golden records get their documents built on first read or by the builder.
insert into customer_document (golden_id) select id from golden_record where status = 'active';
