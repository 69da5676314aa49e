-- Every node calling one CRM account shares its request budget: a request holds a row here while
-- it runs and for one second after its answer, and a node may send only while fewer rows than the
-- budget are held. Times are milliseconds on the database's clock, the one clock all nodes share.
create table rate_slots (
    id bigserial primary key,
    destination text not null,
    held_until bigint not null,
    -- the node whose request it is; a live node holds the session advisory lock (7201, node)
    node integer not null,
    -- true until the answer arrives; a slot in flight whose node is gone frees at once
    in_flight boolean not null
);

create index rate_slots_destination on rate_slots (destination, held_until);

-- Takes a slot for one request: its id, or minus the milliseconds to wait before asking again.
-- One round trip; one caller at a time per destination across all nodes (the lock ends with the
-- statement's transaction). Each node sends one caller at a time, so at most one connection per
-- node waits on the lock.
create function leadgate_take_rate_slot(wanted_destination text, budget bigint, hold_ms bigint, asking_node integer)
returns bigint language plpgsql as $$
declare
    now_ms bigint;
    held bigint;
    next_free bigint;
    taken bigint;
begin
    perform pg_advisory_xact_lock(hashtextextended('leadgate rate budget ' || wanted_destination, 0));
    -- Read after the lock: the wait for it may have been long.
    now_ms := (extract(epoch from clock_timestamp()) * 1000)::bigint;
    delete from rate_slots where destination = wanted_destination and held_until <= now_ms;
    select count(*), min(held_until) into held, next_free from rate_slots where destination = wanted_destination;
    if held >= budget then
        -- Before waiting: requests of nodes that died waiting for an answer free their slots (each
        -- either reached the CRM before its node died or never will). Only now, since reading
        -- pg_locks on every call would cost more than the count.
        delete from rate_slots
        where destination = wanted_destination
          and in_flight
          and node::oid not in (
              select objid from pg_locks where locktype = 'advisory' and classid = 7201 and objsubid = 2 and granted);
        select count(*), min(held_until) into held, next_free from rate_slots where destination = wanted_destination;
        if held >= budget then
            return -greatest(next_free - now_ms, 1);
        end if;
    end if;
    insert into rate_slots (destination, held_until, node, in_flight)
        values (wanted_destination, now_ms + hold_ms, asking_node, true)
        returning id into taken;
    return taken;
end
$$;
