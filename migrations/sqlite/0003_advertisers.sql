-- Advertisers of a portal source (Grupo ZAP): the clients whose leads arrive at
-- /grupozap/lead/{id} or are found by the listing a lead names.
create table advertisers (
    -- the configured source name, so two portal accounts may reuse an id
    source_id text not null,
    id text not null,
    -- CPF (11) or CNPJ (14) digits without mask, as the portal's batch file wants them
    document text not null check (length(document) in (11, 14)),
    name text not null,
    email text,
    send_lead_email integer not null check (send_lead_email in (0, 1)),
    -- null means the source's own destination, pipeline or status
    destination text,
    pipeline text,
    status text,
    enabled integer not null default 1 check (enabled in (0, 1)),
    created_at integer not null,
    updated_at integer not null,
    primary key (source_id, id)
);

-- The portal names a listing (clientListingId) in every lead; the key makes one listing belong
-- to at most one advertiser of a source.
create table advertiser_listings (
    source_id text not null,
    client_listing_id text not null,
    advertiser_id text not null,
    primary key (source_id, client_listing_id),
    foreign key (source_id, advertiser_id) references advertisers (source_id, id) on delete cascade
);

-- Loading and replacing one advertiser's listings.
create index advertiser_listings_owner on advertiser_listings (source_id, advertiser_id);
