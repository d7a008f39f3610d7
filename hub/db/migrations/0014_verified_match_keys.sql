-- Whether the source verified an email or phone (identity-resolution/deterministic-rules.ts: "the same verified
-- email is a match"). Keys stored before are filled from their canonical form, which kept the flag.
alter table match_key add column verified boolean not null default false;

update match_key m set verified = true
from canonical_record c
where c.raw_record_id = m.raw_record_id and m.kind in ('email', 'phone')
  and exists (
    select 1 from jsonb_array_elements(case when m.kind = 'email' then c.data -> 'person' -> 'emails' else c.data -> 'person' -> 'phones' end) as v(item)
    where (v.item ->> 'verified')::boolean
      and case when m.kind = 'email' then lower(trim(v.item ->> 'address')) else v.item ->> 'number' end = m.value
  );
