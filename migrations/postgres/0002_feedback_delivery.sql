-- The PostgreSQL form of sqlite/0002: outbox rows are claimed with a lease.
alter table outbox add column lease_until bigint;
alter table outbox add column lease_token text;
alter table outbox add column last_error text;
alter table outbox add column delivered_at bigint;

create index outbox_lead on outbox (lead_id);
create index leads_status_source on leads (status, source_id);
