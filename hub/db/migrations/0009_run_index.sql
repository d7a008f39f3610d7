-- Retention keeps the runs that raw records still point to; without this index each cleanup scans raw_record.
create index raw_record_last_run on raw_record (last_run_id);
