-- The PostgreSQL form of sqlite/0004: portal leads carry their advertiser's route and their own
-- creation time, and may wait 'unrouted'. PostgreSQL changes the constraint in place.
alter table leads drop constraint leads_status;
alter table leads add constraint leads_status
    check (status in ('pending', 'processing', 'approved', 'rejected', 'skipped', 'dead', 'unrouted'));
alter table leads add column advertiser_id text;
alter table leads add column route_destination text;
alter table leads add column route_pipeline text;
alter table leads add column route_status text;
alter table leads add column advertiser_email text;
alter table leads add column origin_time bigint;

create index leads_advertiser on leads (source_id, advertiser_id);
