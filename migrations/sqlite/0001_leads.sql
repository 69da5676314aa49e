-- The queue is the lead row itself: status, run_at, attempt and the lease say where it stands.
-- Times are unix milliseconds (integers compare the same way in SQLite and PostgreSQL).
create table leads (
    id integer primary key autoincrement,
    source_id text not null,
    -- the sender's own identity for the lead (Idempotency-Key, a portal's lead id)
    external_id text,
    name text not null,
    phone text not null,
    phone_raw text not null,
    email text,
    comment text,
    callback_url text,
    payload text not null,
    status text not null check (status in ('pending', 'processing', 'approved', 'rejected', 'skipped', 'dead')),
    run_at integer not null,
    attempt integer not null default 0,
    lease_until integer,
    lease_token text,
    -- the connector's journal of finished CRM steps, so a resumed lead never repeats one
    progress text,
    decision text,
    contact_id integer,
    deal_id integer,
    last_error text,
    created_at integer not null,
    updated_at integer not null
);

create unique index leads_source_external_id on leads (source_id, external_id) where external_id is not null;
create index leads_due on leads (status, run_at);
create index leads_phone_status on leads (phone, status);

create table lead_history (
    id integer primary key autoincrement,
    lead_id integer not null references leads (id),
    at integer not null,
    kind text not null,
    detail text
);

create index lead_history_lead on lead_history (lead_id, id);

-- Feedback owed for an outcome (callback, e-mail), written in the transaction that commits
-- the outcome so that it can never be forgotten; delivered by the feedback worker.
create table outbox (
    id integer primary key autoincrement,
    lead_id integer not null references leads (id),
    kind text not null check (kind in ('callback', 'email')),
    payload text not null,
    status text not null default 'pending',
    run_at integer not null,
    attempt integer not null default 0,
    created_at integer not null
);

create index outbox_due on outbox (status, run_at);

-- OAuth2 tokens per destination: amoCRM's refresh token is single-use, so the rotated one must
-- be kept before the new access token is used.
create table destination_tokens (
    destination text primary key,
    -- the refresh token from the configuration these were derived from; a new one in the
    -- configuration (a fresh authorisation) replaces what is stored
    seeded_from text not null,
    access_token text not null,
    refresh_token text not null,
    expires_at integer not null
);

-- Values the gateway generated for itself, such as the demo source's key.
create table generated_settings (
    name text primary key,
    value text not null
);
