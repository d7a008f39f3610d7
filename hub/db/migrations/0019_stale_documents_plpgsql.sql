-- hub_stale_documents (0013, 0016) runs in the statement triggers of every resolution pass, six or seven times a pass.
-- As an SQL function its insert was planned again on every call (PostgreSQL keeps no plans of SQL functions), which
-- took about as long as the insert; a PL/pgSQL function keeps its plan for the session. Same statement, same effect.
create or replace function hub_stale_documents(golden_ids text[]) returns void language plpgsql as $$
begin
  insert into customer_document as d (golden_id, generation)
  select id, 1 from (select distinct unnest(golden_ids) as id) ids where id is not null order by id
  on conflict (golden_id) do update set generation = d.generation + 1, body = null
    where d.xmin <> pg_current_xact_id()::xid;
end $$;
