-- The columns of the tables named in $1 (text[]), found as the store's statements find them
-- (through search_path), with what verify.rs compares. No row for a table that does not exist.
SELECT t.name AS table_name,
       a.attname::text AS column_name,
       format_type(a.atttypid, a.atttypmod) AS data_type,
       NOT a.attnotnull AS nullable,
       -- An insert that leaves the column out succeeds.
       (NOT a.attnotnull OR a.atthasdef OR a.attidentity <> '') AS fillable,
       -- The names of the unique indexes on this column alone (a PRIMARY KEY's or a UNIQUE
       -- constraint's too, named as the constraint), on every row (no predicate).
       ARRAY(
           SELECT i.indexrelid::regclass::text
           FROM pg_index i
           WHERE i.indrelid = a.attrelid
             AND i.indisunique
             AND i.indnkeyatts = 1
             AND i.indkey[0] = a.attnum
             AND i.indpred IS NULL
           ORDER BY 1
       ) AS unique_indexes
FROM unnest($1::text[]) AS t(name)
JOIN pg_attribute a ON a.attrelid = to_regclass(quote_ident(t.name))
WHERE a.attnum > 0
  AND NOT a.attisdropped
ORDER BY t.name, a.attnum
