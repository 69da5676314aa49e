-- Every node calling one CRM account shares its request budget: a request holds a row here while
-- it runs and for one second after its answer, and a node may send only while fewer rows than the
-- budget are held. Times are milliseconds on the database's clock, the one clock all nodes share.
create table rate_slots (
    id bigserial primary key,
    destination text not null,
    held_until bigint not null
);

create index rate_slots_destination on rate_slots (destination, held_until);
