-- Alerts to the operators: one row per condition (`source_stalled:partner`), so that of several
-- nodes only the one whose conditional update wins sends it, and at most once per period.
-- Times are unix milliseconds, as everywhere.
create table alerts (
    key text primary key,
    -- when the condition was last seen to begin
    first_seen integer not null,
    -- when the firing alert was last sent; null until it is
    last_sent integer,
    -- set when the condition ended and the resolved message was claimed; null while it lasts
    resolved_at integer
);
