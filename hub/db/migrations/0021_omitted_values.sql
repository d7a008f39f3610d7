-- The values a mapped record's `on_error: omit` rules left out ([{field, target, reason}]; null: none): the record
-- loaded without them, and `GET /v1/customers/{id}` lists them with its source record. Written with the canonical form.
alter table canonical_record add column omitted jsonb;
