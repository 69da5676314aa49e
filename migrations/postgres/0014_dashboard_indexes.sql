-- The dashboard counts CRM calls by the time they were made: history events of one kind in a
-- time range, without walking every lead's history.
create index lead_history_kind_at on lead_history (kind, at);
-- The dashboard's counts per hour read only these columns of a time range's leads, so the index
-- alone answers them.
create index leads_created_outcome on leads (created_at, source_id, status, updated_at);
