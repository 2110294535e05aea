-- Aggregates the dashboards read: per patient per day and per week, per clinic per day,
-- per machine per hour (training and status).
--
-- TimescaleDB: continuous aggregates with real-time aggregation (materialized_only=false)
-- and refresh policies. Plain PostgreSQL: materialized views of the same names and columns,
-- refreshed CONCURRENTLY by `sledfleet db refresh` and periodically by the sink (each needs
-- the unique index below). Buckets: time_bucket on TimescaleDB, date_bin with time_bucket's
-- origin (Monday 2000-01-03) on PostgreSQL, so days and ISO weeks (UTC) are the same.

CREATE MATERIALIZED VIEW sledfleet.agg_patient_daily
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
    patient_id,
    count(*) AS sessions,
    sum(CASE WHEN completed_as_prescribed THEN 1 ELSE 0 END) AS completed_sessions,
    sum(sets) AS sets,
    sum(reps) AS reps,
    sum(partial_reps) AS partial_reps,
    sum(volume_load_kg) AS volume_load_kg,
    sum(work_j) AS work_j,
    sum(duration_s) AS duration_s,
    avg(mean_mcv_ms) AS mean_mcv_ms,
    avg(mean_asi_pct) AS mean_asi_pct,
    max(max_velocity_loss_pct) AS max_velocity_loss_pct,
    max(max_load_kg) AS max_load_kg,
    avg(e1rm_kg) AS e1rm_kg
FROM sledfleet.sessions
WHERE patient_id IS NOT NULL
GROUP BY 1, 2, 3
-- [timescale]
WITH NO DATA;
-- [postgres]
WITH DATA;
CREATE UNIQUE INDEX agg_patient_daily_key ON sledfleet.agg_patient_daily (bucket, clinic_id, patient_id);
-- [end]
CREATE INDEX agg_patient_daily_patient_idx ON sledfleet.agg_patient_daily (patient_id, bucket);
CREATE INDEX agg_patient_daily_clinic_idx ON sledfleet.agg_patient_daily (clinic_id, bucket);

CREATE MATERIALIZED VIEW sledfleet.agg_patient_weekly
-- [timescale]
WITH (timescaledb.continuous, timescaledb.materialized_only = false)
-- [end]
AS SELECT
-- [timescale]
    time_bucket(INTERVAL '7 days', ts) AS bucket,
-- [postgres]
    date_bin(INTERVAL '7 days', ts, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket,
-- [end]
    clinic_id,
    patient_id,
    count(*) AS sessions,
    sum(CASE WHEN completed_as_prescribed THEN 1 ELSE 0 END) AS completed_sessions,
    sum(sets) AS sets,
    sum(reps) AS reps,
    sum(partial_reps) AS partial_reps,
    sum(volume_load_kg) AS volume_load_kg,
    sum(work_j) AS work_j,
    sum(duration_s) AS duration_s,
    avg(mean_mcv_ms) AS mean_mcv_ms,
    avg(mean_asi_pct) AS mean_asi_pct,
    max(max_velocity_loss_pct) AS max_velocity_loss_pct,
    max(max_load_kg) AS max_load_kg,
    avg(e1rm_kg) AS e1rm_kg
FROM sledfleet.sessions
WHERE patient_id IS NOT NULL
GROUP BY 1, 2, 3
-- [timescale]
WITH NO DATA;
-- [postgres]
WITH DATA;
CREATE UNIQUE INDEX agg_patient_weekly_key ON sledfleet.agg_patient_weekly (bucket, clinic_id, patient_id);
-- [end]
CREATE INDEX agg_patient_weekly_patient_idx ON sledfleet.agg_patient_weekly (patient_id, bucket);
CREATE INDEX agg_patient_weekly_clinic_idx ON sledfleet.agg_patient_weekly (clinic_id, bucket);

CREATE MATERIALIZED VIEW sledfleet.agg_clinic_daily
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
    count(*) AS sessions,
    sum(CASE WHEN patient_id IS NULL THEN 1 ELSE 0 END) AS unattributed_sessions,
    sum(CASE WHEN completed_as_prescribed THEN 1 ELSE 0 END) AS completed_sessions,
    sum(sets) AS sets,
    sum(reps) AS reps,
    sum(partial_reps) AS partial_reps,
    sum(volume_load_kg) AS volume_load_kg,
    sum(work_j) AS work_j,
    sum(duration_s) AS duration_s
FROM sledfleet.sessions
GROUP BY 1, 2
-- [timescale]
WITH NO DATA;
-- [postgres]
WITH DATA;
CREATE UNIQUE INDEX agg_clinic_daily_key ON sledfleet.agg_clinic_daily (bucket, clinic_id);
-- [end]
CREATE INDEX agg_clinic_daily_clinic_idx ON sledfleet.agg_clinic_daily (clinic_id, bucket);

CREATE MATERIALIZED VIEW sledfleet.agg_machine_hourly
-- [timescale]
WITH (timescaledb.continuous, timescaledb.materialized_only = false)
-- [end]
AS SELECT
-- [timescale]
    time_bucket(INTERVAL '1 hour', ts) AS bucket,
-- [postgres]
    date_bin(INTERVAL '1 hour', ts, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket,
-- [end]
    clinic_id,
    machine_id,
    count(*) AS reps,
    sum(CASE WHEN valid THEN 1 ELSE 0 END) AS valid_reps,
    sum(CASE WHEN replayed THEN 1 ELSE 0 END) AS replayed_reps,
    sum(dropout_samples) AS dropout_samples,
    sum(tut_s) AS tut_s,
    sum(work_j) AS work_j,
    avg(load_kg) AS mean_load_kg,
    avg(mcv_ms) AS mean_mcv_ms
FROM sledfleet.reps
GROUP BY 1, 2, 3
-- [timescale]
WITH NO DATA;
-- [postgres]
WITH DATA;
CREATE UNIQUE INDEX agg_machine_hourly_key ON sledfleet.agg_machine_hourly (bucket, clinic_id, machine_id);
-- [end]
CREATE INDEX agg_machine_hourly_machine_idx ON sledfleet.agg_machine_hourly (machine_id, bucket);
CREATE INDEX agg_machine_hourly_clinic_idx ON sledfleet.agg_machine_hourly (clinic_id, bucket);

CREATE MATERIALIZED VIEW sledfleet.agg_machine_status_hourly
-- [timescale]
WITH (timescaledb.continuous, timescaledb.materialized_only = false)
-- [end]
AS SELECT
-- [timescale]
    time_bucket(INTERVAL '1 hour', ts) AS bucket,
-- [postgres]
    date_bin(INTERVAL '1 hour', ts, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket,
-- [end]
    clinic_id,
    machine_id,
    count(*) AS reports,
    sum(CASE WHEN status = 'online' THEN 1 ELSE 0 END) AS online_reports,
    max(frames) AS frames,
    max(frames_missing) AS frames_missing,
    max(frames_replayed) AS frames_replayed,
    max(frames_duplicate) AS frames_duplicate,
    max(edge_dropped) AS edge_dropped,
    avg(clock_offset_ms) AS mean_clock_offset_ms,
    max(abs(clock_offset_ms)) AS max_abs_clock_offset_ms
FROM sledfleet.machine_status
GROUP BY 1, 2, 3
-- [timescale]
WITH NO DATA;
-- [postgres]
WITH DATA;
CREATE UNIQUE INDEX agg_machine_status_hourly_key
    ON sledfleet.agg_machine_status_hourly (bucket, clinic_id, machine_id);
-- [end]
CREATE INDEX agg_machine_status_hourly_machine_idx
    ON sledfleet.agg_machine_status_hourly (machine_id, bucket);
CREATE INDEX agg_machine_status_hourly_clinic_idx
    ON sledfleet.agg_machine_status_hourly (clinic_id, bucket);

-- Which aggregates exist, in refresh order, with the window a TimescaleDB policy refreshes.
CREATE TABLE sledfleet.aggregates (
    name          text PRIMARY KEY,
    refresh_order integer NOT NULL,
    start_offset  interval NOT NULL,
    end_offset    interval NOT NULL,
    schedule      interval NOT NULL
);
INSERT INTO sledfleet.aggregates VALUES
    ('agg_patient_daily', 1, INTERVAL '35 days', INTERVAL '1 hour', INTERVAL '15 minutes'),
    ('agg_patient_weekly', 2, INTERVAL '70 days', INTERVAL '1 hour', INTERVAL '30 minutes'),
    ('agg_clinic_daily', 3, INTERVAL '35 days', INTERVAL '1 hour', INTERVAL '15 minutes'),
    ('agg_machine_hourly', 4, INTERVAL '3 days', INTERVAL '10 minutes', INTERVAL '10 minutes'),
    ('agg_machine_status_hourly', 5, INTERVAL '3 days', INTERVAL '10 minutes', INTERVAL '10 minutes');

-- [timescale]
SELECT add_continuous_aggregate_policy(format('sledfleet.%I', name)::regclass,
    start_offset => start_offset, end_offset => end_offset, schedule_interval => schedule)
FROM sledfleet.aggregates ORDER BY refresh_order;
-- [end]
