-- Delivering owed feedback: outbox rows are claimed with a lease like leads, and keep their
-- last error and the time they were delivered.
alter table outbox add column lease_until integer;
alter table outbox add column lease_token text;
alter table outbox add column last_error text;
alter table outbox add column delivered_at integer;

create index outbox_lead on outbox (lead_id);
create index leads_status_source on leads (status, source_id);
