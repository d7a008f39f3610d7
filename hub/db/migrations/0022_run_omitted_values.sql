-- How many records a run stored with values an `on_error: omit` rule left out (GET /v1/runs/{id}, `hub sync`): the
-- run loaded them, and a reader of its counts learns that something was dropped without reading every customer.
alter table sync_run add column with_omitted_values integer not null default 0;
