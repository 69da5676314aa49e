-- The PostgreSQL form of sqlite/0005: an advertiser's own Basic password.
create table advertiser_secrets (
    source_id text not null,
    advertiser_id text not null,
    secret_key text not null,
    primary key (source_id, advertiser_id),
    foreign key (source_id, advertiser_id) references advertisers (source_id, id) on delete cascade
);
