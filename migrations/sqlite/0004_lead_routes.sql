-- Portal leads carry their advertiser and the route it sets, may arrive before their advertiser
-- is known ('unrouted'), and bring the portal's own creation time. SQLite cannot change a CHECK
-- constraint in place, so `leads` is rebuilt, and with it the two tables that refer to it: the
-- migration runs in a transaction with foreign keys on, so the children move to the new table
-- before the old one is dropped, and renaming the new table carries their references along.

create table leads_rebuilt (
    id integer primary key autoincrement,
    source_id text not null,
    external_id text,
    name text not null,
    phone text not null,
    phone_raw text not null,
    email text,
    comment text,
    callback_url text,
    payload text not null,
    status text not null
        check (status in ('pending', 'processing', 'approved', 'rejected', 'skipped', 'dead', 'unrouted')),
    run_at integer not null,
    attempt integer not null default 0,
    lease_until integer,
    lease_token text,
    progress text,
    decision text,
    contact_id integer,
    deal_id integer,
    last_error text,
    created_at integer not null,
    updated_at integer not null,
    -- the portal advertiser the lead is for, and the route it sets (null: the source's)
    advertiser_id text,
    route_destination text,
    route_pipeline text,
    route_status text,
    -- where the advertiser wants a copy of each lead (the portal's SEND_LEAD_EMAIL)
    advertiser_email text,
    -- when the lead was made at its origin, as unix milliseconds
    origin_time integer
);

insert into leads_rebuilt (id, source_id, external_id, name, phone, phone_raw, email, comment, callback_url, payload,
                           status, run_at, attempt, lease_until, lease_token, progress, decision, contact_id, deal_id,
                           last_error, created_at, updated_at)
select id, source_id, external_id, name, phone, phone_raw, email, comment, callback_url, payload,
       status, run_at, attempt, lease_until, lease_token, progress, decision, contact_id, deal_id,
       last_error, created_at, updated_at
from leads;

create table lead_history_rebuilt (
    id integer primary key autoincrement,
    lead_id integer not null references leads_rebuilt (id),
    at integer not null,
    kind text not null,
    detail text
);
insert into lead_history_rebuilt (id, lead_id, at, kind, detail) select id, lead_id, at, kind, detail from lead_history;

create table outbox_rebuilt (
    id integer primary key autoincrement,
    lead_id integer not null references leads_rebuilt (id),
    kind text not null check (kind in ('callback', 'email')),
    payload text not null,
    status text not null default 'pending',
    run_at integer not null,
    attempt integer not null default 0,
    created_at integer not null,
    lease_until integer,
    lease_token text,
    last_error text,
    delivered_at integer
);
insert into outbox_rebuilt (id, lead_id, kind, payload, status, run_at, attempt, created_at, lease_until, lease_token,
                            last_error, delivered_at)
select id, lead_id, kind, payload, status, run_at, attempt, created_at, lease_until, lease_token, last_error, delivered_at
from outbox;

drop table lead_history;
drop table outbox;
drop table leads;
alter table leads_rebuilt rename to leads;
alter table lead_history_rebuilt rename to lead_history;
alter table outbox_rebuilt rename to outbox;

create unique index leads_source_external_id on leads (source_id, external_id) where external_id is not null;
create index leads_due on leads (status, run_at);
create index leads_phone_status on leads (phone, status);
create index leads_status_source on leads (status, source_id);
create index leads_advertiser on leads (source_id, advertiser_id);
create index lead_history_lead on lead_history (lead_id, id);
create index outbox_due on outbox (status, run_at);
create index outbox_lead on outbox (lead_id);
