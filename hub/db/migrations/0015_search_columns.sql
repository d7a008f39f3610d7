-- The normalised names that name search compares, stored with each golden record instead of computed per candidate
-- row and query (hub_name_key alone cost about 0.2 ms a row: a misspelt name among a million records took seconds).
alter table golden_record add column search_name text generated always as (hub_customer_name(data)) stored;
alter table golden_record add column search_key text generated always as (hub_name_key(hub_customer_name(data))) stored;
alter table golden_record add column search_organisation text generated always as (hub_name_norm(data #>> '{organisation,name}')) stored;

drop index golden_record_name_trgm;
drop index golden_record_name_key_trgm;
drop index golden_record_organisation_trgm;
create index golden_record_search_name_trgm on golden_record using gin (search_name gin_trgm_ops) where status = 'active';
create index golden_record_search_key_trgm on golden_record using gin (search_key gin_trgm_ops) where status = 'active';
create index golden_record_search_organisation_trgm on golden_record using gin (search_organisation gin_trgm_ops) where status = 'active';
