-- The operator console: its users, their sessions, failed logins (for lock-out) and the audit log.
-- Times are unix milliseconds, as everywhere.
create table console_users (
    id integer primary key autoincrement,
    username text not null unique,
    -- argon2id in PHC string format; the password itself is never stored
    password_hash text not null,
    role text not null check (role in ('admin', 'viewer')),
    disabled integer not null default 0 check (disabled in (0, 1)),
    created_at integer not null,
    updated_at integer not null
);

-- A session is found by the SHA-256 of its cookie, so a copy of the database opens no session.
create table console_sessions (
    token_hash text primary key,
    user_id integer not null references console_users (id),
    csrf_token text not null,
    -- the leads page's search (a phone, an e-mail, a name), kept here so it never enters a URL
    search text,
    created_at integer not null,
    expires_at integer not null
);
create index console_sessions_user on console_sessions (user_id);

create table console_login_failures (
    id integer primary key autoincrement,
    username text not null,
    address text not null,
    at integer not null
);
create index console_login_failures_user on console_login_failures (username, at);
create index console_login_failures_address on console_login_failures (address, at);

create table console_audit (
    id integer primary key autoincrement,
    at integer not null,
    -- a console user's name, or `command line` for `leadgate users`
    actor text not null,
    action text not null,
    detail text
);

-- The console's lead list walks leads newest first (by id) within a status, a source, or from an
-- e-mail; these keep each filter on an index instead of a scan of every lead.
create index leads_status_id on leads (status, id);
create index leads_source_id on leads (source_id, id);
create index leads_email on leads (lower(email));
create index leads_created_at on leads (created_at);
