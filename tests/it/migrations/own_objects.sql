-- Everything of ours in a database, one line each, as `name`. Diesel's bookkeeping table, its
-- index and its row type are not ours.
WITH bookkeeping AS (SELECT to_regclass('public.__diesel_schema_migrations') AS oid)
-- relations in public: tables, indexes, sequences, views, composite types
SELECT 'relation ' || c.relname || ' (relkind ' || c.relkind::text || ')' AS name
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public'
  AND c.oid IS DISTINCT FROM (SELECT oid FROM bookkeeping)
  AND NOT EXISTS (SELECT 1 FROM pg_index i
                  WHERE i.indexrelid = c.oid AND i.indrelid = (SELECT oid FROM bookkeeping))
UNION ALL
-- standalone types in public (enums, domains, ranges): row types come with their relation, array
-- types with their element type
SELECT 'type ' || t.typname
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = 'public' AND t.typrelid = 0 AND NOT (t.typtype = 'b' AND t.typelem <> 0)
UNION ALL
-- functions and procedures in public
SELECT 'function ' || p.oid::regprocedure::text
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'public'
UNION ALL
-- schemas besides public and the system's
SELECT 'schema ' || nspname FROM pg_namespace
WHERE nspname NOT IN ('public', 'information_schema') AND nspname NOT LIKE 'pg\_%'
UNION ALL
-- extensions besides the built-in plpgsql
SELECT 'extension ' || extname FROM pg_extension WHERE extname <> 'plpgsql'
ORDER BY 1
