-- A telephony source's lead is a finished call; its record (who rang, who answered, how long).
alter table leads add column call_spec text;

-- Call events as PBXs send them, one row each, kept until and after their call is assembled.
create table call_events (
    id bigserial primary key,
    source_id text not null,
    call_id text not null,
    received_at bigint not null,
    event text not null
);
create index call_events_of_call on call_events (source_id, call_id, id);

-- One row per call: `open` while its events arrive, then `complete` (its lead is `lead_id`) or
-- `ignored` (an internal call, or one of extensions nobody mapped) with the reason.
create table calls (
    source_id text not null,
    call_id text not null,
    state text not null check (state in ('open', 'complete', 'ignored')),
    last_event_at bigint not null,
    lead_id bigint references leads (id),
    ignored_because text,
    primary key (source_id, call_id)
);
create index calls_open on calls (state, last_event_at);
