-- The values a mapped record's `on_error: omit` rules left out ([{field, target, reason}]; null: none): the record
-- loaded without them, and `GET /v1/customers/{id}` lists them with its source record. Written with the canonical form.
alter table canonical_record add column omitted jsonb;
-- How many records of a source lost values so (GET /v1/sources), without reading the others.
create index canonical_record_omitted on canonical_record (source) where omitted is not null;
