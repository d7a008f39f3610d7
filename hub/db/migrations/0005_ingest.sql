-- Replay protection of signed pushes (hub/routes/receive.ts): each signature is accepted once per source while
-- its timestamp is inside the source's window; older rows are deleted as new ones arrive.
create table received_signature (
  source text not null references source (name) on delete cascade,
  signature text not null,
  signed_at timestamptz not null,
  received_at timestamptz not null default now(),
  primary key (source, signature)
);
create index received_signature_signed_at on received_signature (signed_at);
