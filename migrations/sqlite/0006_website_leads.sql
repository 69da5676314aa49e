-- Website leads (the proxy-lead API, forms) describe their deal: title, budget, tags, custom fields, files.
alter table leads add column deal_spec text;

-- Notes for a lead's CRM deal (a site's follow-up message, a client's repeated request) are owed like
-- callbacks and e-mails, so they join the outbox. One owed before the deal exists is 'waiting' until
-- the lead is delivered. SQLite cannot change a CHECK constraint in place, so the outbox is rebuilt.
create table outbox_rebuilt (
    id integer primary key autoincrement,
    lead_id integer not null references leads (id),
    kind text not null check (kind in ('callback', 'email', 'deal_note')),
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
drop table outbox;
alter table outbox_rebuilt rename to outbox;
create index outbox_due on outbox (status, run_at);
create index outbox_lead on outbox (lead_id);

-- The duplicate check looks for the same client's leads of one source.
create index leads_source_phone on leads (source_id, phone, status);
