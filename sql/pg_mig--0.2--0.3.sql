/* sql/pg_mig--0.2--0.3.sql -- pg_mig 0.3: hardening, job kinds, undo, lanes */

\echo Use "ALTER EXTENSION pg_mig UPDATE TO '0.3'" to load this file. \quit

-- Every object below is schema-qualified with @extschema@ or pg_catalog;
-- operators in views and functions are written OPERATOR(pg_catalog.x).

------------------------------------------------------------------------
-- Section 1: hardening (issue 11): guarded job tables, grants, limits
------------------------------------------------------------------------

-- (end of section 1)

------------------------------------------------------------------------
-- Section 2: job kinds and schema steps (issue 13)
------------------------------------------------------------------------

-- (end of section 2)

------------------------------------------------------------------------
-- Section 3: undo and parallel lanes (issues 14, 15)
------------------------------------------------------------------------

-- (end of section 3)

------------------------------------------------------------------------
-- Section 4: the job view, rebuilt last over everything above
------------------------------------------------------------------------

-- (end of section 4)
