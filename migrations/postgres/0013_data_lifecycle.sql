-- Data lifecycle: erased leads stay as tombstones, and retention remembers what it already removed.
-- Times are unix milliseconds, as everywhere.

-- Set when the person's data was erased: the row keeps only its id, source, dates and outcome.
alter table leads add column erased_at bigint;
-- Set when retention removed the lead's files from disk, so they are not looked for again.
alter table leads add column files_removed_at bigint;

-- Retention walks the oldest leads that still have files, and the oldest history that still has details.
create index leads_with_files on leads (created_at) where deal_spec is not null and files_removed_at is null;
create index lead_history_details on lead_history (at) where detail is not null;
