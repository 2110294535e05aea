-- Estimated rows and total size per SledFleet table (partitions and hypertable chunks summed
-- into their parent), from the planner statistics: instant on any size.
WITH RECURSIVE tree AS (
    SELECT c.oid AS root, c.oid AS rel
    FROM pg_class c
    WHERE c.relnamespace = 'sledfleet'::regnamespace AND c.relkind IN ('r', 'p')
      AND NOT c.relispartition
    UNION ALL
    SELECT t.root, i.inhrelid FROM tree t JOIN pg_inherits i ON i.inhparent = t.rel
)
SELECT r.relname AS table_name,
       sum(greatest(c.reltuples, 0))::bigint AS estimated_rows,
       sum(pg_total_relation_size(c.oid))::bigint AS bytes
FROM tree t
JOIN pg_class r ON r.oid = t.root
JOIN pg_class c ON c.oid = t.rel
GROUP BY r.relname
ORDER BY r.relname
