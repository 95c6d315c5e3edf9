-- mig_plan leaves the caller's transaction as it found it, also when a
-- sample chunk fails: its internal subtransaction is rolled back and its
-- kept statements are freed.
\set VERBOSITY terse
CREATE TABLE px_orders (id int PRIMARY KEY, n int);
INSERT INTO px_orders SELECT g, g FROM generate_series(1, 100) g;
CREATE TABLE px_side (x int);

-- the caller's exception block rolls back its own work as well
DO $$
BEGIN
  BEGIN
    INSERT INTO px_side VALUES (1);
    PERFORM * FROM mig_plan('px_orders', 'n = 1/(n-n)', samples => 1);
    RAISE EXCEPTION 'not reached';
  EXCEPTION WHEN division_by_zero THEN
    RAISE NOTICE 'caught: %', SQLERRM;
  END;
  INSERT INTO px_side VALUES (2);
END $$;
SELECT x FROM px_side;
-- and the next statement is a transaction of its own again
SELECT txid_current_if_assigned() IS NULL AS no_xid,
       now() = statement_timestamp() AS fresh_xact;
SELECT count(*) AS changed FROM px_orders WHERE n <> id;

-- an error outside any exception block aborts the statement as usual
SELECT * FROM mig_plan('px_orders', 'n = 1/(n-n)', samples => 1);
SELECT txid_current_if_assigned() IS NULL AS no_xid;

-- inside an explicit transaction, a savepoint rolls back to where it was
BEGIN;
INSERT INTO px_side VALUES (3);
SAVEPOINT s;
INSERT INTO px_side VALUES (4);
SELECT * FROM mig_plan('px_orders', 'n = 1/(n-n)', samples => 1);
ROLLBACK TO SAVEPOINT s;
INSERT INTO px_side VALUES (5);
COMMIT;
SELECT x FROM px_side ORDER BY x;

-- many failing calls in one session, then a new session: the old one ends
-- cleanly, and the server did not restart
SELECT pg_postmaster_start_time() AS boot \gset
CREATE TABLE px_session AS SELECT pg_backend_pid() AS pid;
DO $$
BEGIN
  FOR i IN 1 .. 30 LOOP
    BEGIN
      PERFORM * FROM mig_plan('px_orders', 'n = 1/(n-n)', samples => 2);
    EXCEPTION WHEN division_by_zero THEN
      NULL;
    END;
  END LOOP;
END $$;
SELECT txid_current_if_assigned() IS NULL AS no_xid;
\c
DO $$
BEGIN
  WHILE EXISTS (SELECT FROM pg_stat_activity a JOIN px_session s USING (pid)) LOOP
    PERFORM pg_sleep(0.05);
    PERFORM pg_stat_clear_snapshot();
  END LOOP;
END $$;
SELECT pg_postmaster_start_time() = :'boot' AS same_server;
SELECT count(*) AS changed FROM px_orders WHERE n <> id;
DROP TABLE px_orders, px_side, px_session;
