-- CRM records are named by their kind and an id kept as text, since CRMs number records with
-- integers, UUIDs or slugs alike. `entities`: every record the outcome made or used, as a JSON
-- array of {kind, id, number?, made, url?}; `crm_deal`: the deal or ticket later notes go to.
alter table leads add column entities text;
alter table leads add column crm_deal text;

-- Earlier outcomes named at most amoCRM's contact and deal; whether they were made is read off
-- the decision, and card links were never kept (they are made when a message is written).
update leads set
    crm_deal = cast(deal_id as text),
    entities = case
        when contact_id is not null and deal_id is not null then json_array(
            json_object('kind', 'contact', 'id', cast(contact_id as text), 'made', json(case when decision = 'new_client' then 'true' else 'false' end)),
            json_object('kind', 'deal', 'id', cast(deal_id as text), 'made', json(case when decision in ('new_client', 'known_client_new_deal') then 'true' else 'false' end)))
        when contact_id is not null then json_array(
            json_object('kind', 'contact', 'id', cast(contact_id as text), 'made', json(case when decision = 'new_client' then 'true' else 'false' end)))
        else json_array()
    end
where decision is not null;

alter table leads drop column contact_id;
alter table leads drop column deal_id;
