-- Accounts of people (stewards, admins) who sign in to the workspace, their sessions and failed sign-ins.

create table hub_user (
  id             bigint generated always as identity primary key,
  username       text not null unique check (username ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  role           text not null check (role in ('steward', 'admin')),
  -- scrypt$<N>$<r>$<p>$<salt>$<hash> (base64url): the parameters travel with the hash so they can be raised later
  password_hash  text not null,
  created_at     timestamptz not null default now(),
  disabled_at    timestamptz
);

-- The cookie carries the token; only its SHA-256 is kept, so the table never holds a usable session.
create table user_session (
  token_hash    text primary key,
  user_id       bigint not null references hub_user (id) on delete cascade,
  csrf_token    text not null,
  created_at    timestamptz not null default now(),
  -- the absolute end; the idle end is last_seen_at + the idle timeout
  expires_at    timestamptz not null,
  last_seen_at  timestamptz not null default now()
);
create index user_session_by_user on user_session (user_id);
create index user_session_expires on user_session (expires_at);

-- Failed sign-ins per username (known or not), for throttling; only the last minutes matter.
create table sign_in_failure (
  username   text not null,
  failed_at  timestamptz not null default now()
);
create index sign_in_failure_by_username on sign_in_failure (username, failed_at);
