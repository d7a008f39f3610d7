-- Resolution passes over unrelated records run side by side (identity-resolution/resolve.ts). A pass claims each golden
-- record it recomputes: it takes the row's lock, held until it commits, and writes its transaction id. A pass that finds
-- the previous claimant's transaction not visible in the snapshot it started reading from knows the cluster changed
-- under it, and reads again. Rows are made on first claim; updates touch no indexed column (HOT, hence the fillfactor).
create table cluster_claim (
  golden_id   text primary key,
  claimed_by  xid8 not null,
  previous    xid8
) with (fillfactor = 50);
