-- CRM records are named by their kind and an id kept as text, since CRMs number records with
-- integers, UUIDs or slugs alike. `entities`: every record the outcome made or used, as a JSON
-- array of {kind, id, number?, made, url?}; `crm_deal`: the deal or ticket later notes go to.
alter table leads add column entities text;
alter table leads add column crm_deal text;

-- Earlier outcomes named at most amoCRM's contact and deal; whether they were made is read off
-- the decision, and card links were never kept (they are made when a message is written).
update leads set
    crm_deal = deal_id::text,
    entities = (
        select coalesce(json_agg(entity order by position), '[]'::json)::text
        from (
            select 1 as position, json_build_object('kind', 'contact', 'id', contact_id::text, 'made', decision = 'new_client') as entity
            where contact_id is not null
            union all
            select 2, json_build_object('kind', 'deal', 'id', deal_id::text, 'made', decision in ('new_client', 'known_client_new_deal'))
            where deal_id is not null
        ) as made
    )
where decision is not null;

alter table leads drop column contact_id;
alter table leads drop column deal_id;
