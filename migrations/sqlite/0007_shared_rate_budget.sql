-- PostgreSQL's 0007 adds the rate budget that several nodes share. A SQLite database has one
-- gateway process, whose budget lives in memory; this keeps both backends' migrations numbered alike.
select 1;
