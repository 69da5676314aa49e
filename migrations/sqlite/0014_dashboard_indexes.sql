-- Each CRM call a connector made for a lead is a history event; its destination and HTTP status
-- get columns of their own, so the dashboard counts calls per destination and second, and the
-- 429s among them, from this index alone: no lead is joined and no JSON is read. Calls recorded
-- before this migration have neither and are not counted.
alter table lead_history add column crm_destination text;
alter table lead_history add column crm_status integer;
create index lead_history_crm_calls on lead_history (kind, at, crm_destination, crm_status);
-- The dashboard's counts per hour read only these columns of a time range's leads, so the index
-- alone answers them.
create index leads_created_outcome on leads (created_at, source_id, status, updated_at);
