-- The PostgreSQL form of sqlite/0003: a portal source's advertisers and the listings they own.
create table advertisers (
    source_id text not null,
    id text not null,
    document text not null check (length(document) in (11, 14)),
    name text not null,
    email text,
    send_lead_email boolean not null,
    destination text,
    pipeline text,
    status text,
    enabled boolean not null default true,
    created_at bigint not null,
    updated_at bigint not null,
    primary key (source_id, id)
);

create table advertiser_listings (
    source_id text not null,
    client_listing_id text not null,
    advertiser_id text not null,
    primary key (source_id, client_listing_id),
    foreign key (source_id, advertiser_id) references advertisers (source_id, id) on delete cascade
);

create index advertiser_listings_owner on advertiser_listings (source_id, advertiser_id);
