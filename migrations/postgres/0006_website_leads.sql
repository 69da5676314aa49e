-- The PostgreSQL form of sqlite/0006: website leads' deal descriptions, and deal notes in the outbox.
alter table leads add column deal_spec text;
alter table outbox drop constraint outbox_kind;
alter table outbox add constraint outbox_kind check (kind in ('callback', 'email', 'deal_note'));

create index leads_source_phone on leads (source_id, phone, status);

-- Claims look for expired leases in lease order; with a large backlog this keeps them an index walk.
create index leads_lease on leads (status, lease_until);
