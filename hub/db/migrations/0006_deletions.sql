-- Records a full sweep of their stream no longer found: kept as received, out of every golden record.
alter table raw_record add column deleted_at timestamptz;
-- When the current full sweep of a stream began; records not seen since were deleted at the source.
alter table stream_state add column sweep_started_at timestamptz;
alter table sync_run add column deleted integer not null default 0;
