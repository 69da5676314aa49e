-- The PostgreSQL form of sqlite/0001: leads (the queue itself), their history, the outbox,
-- OAuth tokens and generated settings. Times are unix milliseconds, as in SQLite, so rows copy
-- between the backends unchanged.
create table leads (
    id bigserial primary key,
    source_id text not null,
    external_id text,
    name text not null,
    phone text not null,
    phone_raw text not null,
    email text,
    comment text,
    callback_url text,
    payload text not null,
    status text not null,
    run_at bigint not null,
    attempt bigint not null default 0,
    lease_until bigint,
    lease_token text,
    progress text,
    decision text,
    contact_id bigint,
    deal_id bigint,
    last_error text,
    created_at bigint not null,
    updated_at bigint not null,
    constraint leads_status check (status in ('pending', 'processing', 'approved', 'rejected', 'skipped', 'dead'))
);

create unique index leads_source_external_id on leads (source_id, external_id) where external_id is not null;
create index leads_due on leads (status, run_at);
create index leads_phone_status on leads (phone, status);

create table lead_history (
    id bigserial primary key,
    lead_id bigint not null references leads (id),
    at bigint not null,
    kind text not null,
    detail text
);

create index lead_history_lead on lead_history (lead_id, id);

create table outbox (
    id bigserial primary key,
    lead_id bigint not null references leads (id),
    kind text not null,
    payload text not null,
    status text not null default 'pending',
    run_at bigint not null,
    attempt bigint not null default 0,
    created_at bigint not null,
    constraint outbox_kind check (kind in ('callback', 'email'))
);

create index outbox_due on outbox (status, run_at);

create table destination_tokens (
    destination text primary key,
    seeded_from text not null,
    access_token text not null,
    refresh_token text not null,
    expires_at bigint not null
);

create table generated_settings (
    name text primary key,
    value text not null
);
