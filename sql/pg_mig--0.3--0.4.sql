/* sql/pg_mig--0.3--0.4.sql -- pg_mig 0.4: safe retries, security round two, new kinds */

\echo Use "ALTER EXTENSION pg_mig UPDATE TO '0.4'" to load this file. \quit

-- Every object below is schema-qualified with @extschema@ or pg_catalog;
-- operators in views and functions are written OPERATOR(pg_catalog.x).
-- Whatever this script adds or changes goes into sql/pg_mig.sql too (the
-- full install script of 0.4), in its final form and in the section of the
-- same name; it_ops (Ops.FreshInstallEqualsTheUpgradePath) shows every
-- difference between the two.

------------------------------------------------------------------------
-- Section 1: recovery (issue 21): job keys, retries of failed jobs
------------------------------------------------------------------------

------------------------------------------------------------------------
-- Section 2: security, round two (issue 22)
------------------------------------------------------------------------

------------------------------------------------------------------------
-- Section 3: PostgreSQL 19 (issue 24): mig_repack
------------------------------------------------------------------------

------------------------------------------------------------------------
-- Section 4: monitoring (issue 27) and pacing (issue 28)
------------------------------------------------------------------------

------------------------------------------------------------------------
-- Section 5: the job views, rebuilt last over everything above
------------------------------------------------------------------------
