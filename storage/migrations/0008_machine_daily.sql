-- Daily per-machine aggregates for the day-grain data-quality views: a fleet-wide week is
-- 7 rows per machine instead of ~70 hourly ones. v_data_quality keeps its columns.

CREATE MATERIALIZED VIEW sledfleet.agg_machine_status_daily
-- [timescale]
WITH (timescaledb.continuous, timescaledb.materialized_only = false)
-- [end]
AS SELECT
-- [timescale]
    time_bucket(INTERVAL '1 day', ts) AS bucket,
-- [postgres]
    date_bin(INTERVAL '1 day', ts, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket,
-- [end]
    clinic_id,
    machine_id,
    count(*) AS reports,
    max(frames) AS frames,
    max(frames_missing) AS frames_missing,
    max(frames_replayed) AS frames_replayed,
    max(frames_duplicate) AS frames_duplicate,
    max(edge_dropped) AS edge_dropped,
    max(abs(clock_offset_ms)) AS max_abs_clock_offset_ms
FROM sledfleet.machine_status
GROUP BY 1, 2, 3
-- [timescale]
WITH NO DATA;
-- [postgres]
WITH DATA;
CREATE UNIQUE INDEX agg_machine_status_daily_key
    ON sledfleet.agg_machine_status_daily (bucket, clinic_id, machine_id);
-- [end]
CREATE INDEX agg_machine_status_daily_clinic_idx
    ON sledfleet.agg_machine_status_daily (clinic_id, bucket);

CREATE MATERIALIZED VIEW sledfleet.agg_machine_daily
-- [timescale]
WITH (timescaledb.continuous, timescaledb.materialized_only = false)
-- [end]
AS SELECT
-- [timescale]
    time_bucket(INTERVAL '1 day', ts) AS bucket,
-- [postgres]
    date_bin(INTERVAL '1 day', ts, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket,
-- [end]
    clinic_id,
    machine_id,
    count(*) AS reps,
    sum(CASE WHEN replayed THEN 1 ELSE 0 END) AS replayed_reps,
    sum(dropout_samples) AS dropout_samples
FROM sledfleet.reps
GROUP BY 1, 2, 3
-- [timescale]
WITH NO DATA;
-- [postgres]
WITH DATA;
CREATE UNIQUE INDEX agg_machine_daily_key ON sledfleet.agg_machine_daily (bucket, clinic_id, machine_id);
-- [end]
CREATE INDEX agg_machine_daily_clinic_idx ON sledfleet.agg_machine_daily (clinic_id, bucket);

INSERT INTO sledfleet.aggregates VALUES
    ('agg_machine_daily', 6, INTERVAL '35 days', INTERVAL '1 hour', INTERVAL '30 minutes'),
    ('agg_machine_status_daily', 7, INTERVAL '35 days', INTERVAL '1 hour', INTERVAL '30 minutes');

-- [timescale]
SELECT add_continuous_aggregate_policy(format('sledfleet.%I', name)::regclass,
    start_offset => start_offset, end_offset => end_offset, schedule_interval => schedule)
FROM sledfleet.aggregates WHERE name IN ('agg_machine_daily', 'agg_machine_status_daily');
-- [end]

CREATE OR REPLACE VIEW sledfleet.v_data_quality AS
SELECT bucket AS day, clinic_id,
       count(*) FILTER (WHERE has_status) AS machines_reporting,
       coalesce(sum(frames), 0)::bigint AS frames,
       coalesce(sum(frames_missing), 0)::bigint AS frames_missing,
       coalesce(sum(frames_replayed), 0)::bigint AS frames_replayed,
       coalesce(sum(frames_duplicate), 0)::bigint AS frames_duplicate,
       coalesce(sum(edge_dropped), 0)::bigint AS edge_dropped,
       max(max_abs_clock_offset_ms) AS max_abs_clock_offset_ms,
       coalesce(sum(reps), 0)::bigint AS reps,
       coalesce(sum(replayed_reps), 0)::bigint AS replayed_reps,
       coalesce(sum(dropout_samples), 0)::bigint AS dropout_samples
FROM (
    -- status counters are cumulative per machine: the day's highest value per machine
    SELECT bucket, clinic_id, true AS has_status, frames, frames_missing, frames_replayed,
           frames_duplicate, edge_dropped, max_abs_clock_offset_ms,
           NULL::bigint AS reps, NULL::bigint AS replayed_reps, NULL::bigint AS dropout_samples
    FROM sledfleet.agg_machine_status_daily
    UNION ALL
    SELECT bucket, clinic_id, false, NULL, NULL, NULL, NULL, NULL, NULL,
           reps, replayed_reps, dropout_samples
    FROM sledfleet.agg_machine_daily
) per_machine
GROUP BY bucket, clinic_id;
