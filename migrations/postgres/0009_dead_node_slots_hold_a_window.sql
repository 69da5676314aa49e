-- A request of a dead node was freed at once; it may have reached the CRM a moment before its node
-- died, and then one more request fitted into the CRM's second. It is now held one window more,
-- as if its answer had arrived when the death was noticed.
create or replace function leadgate_take_rate_slot(wanted_destination text, budget bigint, hold_ms bigint, asking_node integer)
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
        -- Before waiting: a request of a node that died waiting for its answer is taken as answered
        -- now, so its slot frees one window from now. It may have reached the CRM just before the
        -- node died, and the CRM counts it in its own second. Only now, since reading pg_locks on
        -- every call would cost more than the count.
        update rate_slots set in_flight = false, held_until = now_ms + 1000
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
