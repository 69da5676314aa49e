-- An advertiser may have a Basic password of its own, for installations where the portal issues
-- one per advertiser; it then replaces the source's `secret_key` for that advertiser's URL. Kept
-- apart from `advertisers` so that listings and exports never carry it.
create table advertiser_secrets (
    source_id text not null,
    advertiser_id text not null,
    secret_key text not null,
    primary key (source_id, advertiser_id),
    foreign key (source_id, advertiser_id) references advertisers (source_id, id) on delete cascade
);
