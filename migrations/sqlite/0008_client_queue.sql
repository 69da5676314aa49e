-- The queue's index of clients, so that a claim reads only the rows it takes, however long the
-- backlog and however many leads one phone has. One row per client (phone) with leads on their
-- way: either the lead that goes next, due at `run_at` (`in_flight` false), or the lead being
-- delivered (`in_flight` true). The client's other leads wait in `leads` until that one settles.
-- `started`: the waiting lead began its CRM steps, so it keeps the phone ahead of newer leads.
create table client_queue (
    phone text primary key,
    lead_id integer not null references leads (id),
    run_at integer not null,
    in_flight integer not null check (in_flight in (0, 1)),
    started integer not null check (started in (0, 1))
);

-- Claims walk the waiting clients in due order.
create index client_queue_due on client_queue (in_flight, run_at);

-- A client's next lead when its current one settles: the one that started its CRM steps (at most
-- one, and rare), else the earliest due; each is one index probe even for a phone with 10,000 leads.
create index leads_client_next on leads (phone, status, run_at);
create index leads_client_started on leads (phone) where status = 'pending' and progress is not null;

-- The duplicate check looks a client up by e-mail too (by phone, `leads_source_phone` serves).
create index leads_source_email on leads (source_id, email) where email is not null;

-- Take-overs: leads and outbox rows whose lease ran out, in lease order.
create index leads_lease on leads (status, lease_until);
create index outbox_lease on outbox (status, lease_until);

-- Claims no longer walk the leads themselves; `leads_client_next` covers what the phone index did.
drop index leads_due;
drop index leads_phone_status;

-- Existing queues: every client with a lead being delivered, then every other client with a lead
-- waiting, its started lead first, else its earliest due.
insert into client_queue (phone, lead_id, run_at, in_flight, started)
select phone, id, run_at, true, false
from (select phone, id, run_at, row_number() over (partition by phone order by id) as n
      from leads where status = 'processing') as delivering
where n = 1;

insert into client_queue (phone, lead_id, run_at, in_flight, started)
select phone, id, run_at, false, started
from (select phone, id, run_at, progress is not null as started,
             row_number() over (partition by phone order by progress is null, run_at, id) as n
      from leads where status = 'pending') as waiting
where n = 1 and phone not in (select phone from client_queue);
