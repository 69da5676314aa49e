-- The PostgreSQL form of sqlite/0008: the queue's index of clients, one row per client (phone)
-- with leads on their way, so a claim reads only the rows it takes (see the SQLite file).
create table client_queue (
    phone text primary key,
    lead_id bigint not null references leads (id),
    run_at bigint not null,
    in_flight boolean not null,
    started boolean not null
);

create index client_queue_due on client_queue (in_flight, run_at);

create index leads_client_next on leads (phone, status, run_at, id);
create index leads_client_started on leads (phone) where status = 'pending' and progress is not null;

-- The duplicate check looks a client up by e-mail too (by phone, `leads_source_phone` serves).
create index leads_source_email on leads (source_id, email) where email is not null;

-- `leads_lease` exists since 0006.
create index outbox_lease on outbox (status, lease_until);

drop index leads_due;
drop index leads_phone_status;

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
