-- Clinics keep local calendars: every clinic has an IANA time zone (default UTC), and every
-- view that groups by day or week groups by the clinic's local day / ISO week.
--
-- Aggregates cannot bucket by a zone that lives in another table and may change later
-- (a TimescaleDB continuous aggregate takes only a constant zone, and would not re-bucket
-- history when the clinic's zone changes). So the per-day aggregates become per-15-minute
-- ones: every zone in use today has a UTC offset that is a whole multiple of 15 minutes,
-- so a 15-minute bucket never straddles a local midnight, and the views re-bucket those
-- partial sums with date_trunc('day' | 'week', bucket, clinic zone), correct across DST
-- (local days of 23 and 25 hours). Averages are kept as sums and counts so re-bucketing
-- gives the exact same mean. A zone change takes effect on the next query: nothing to
-- refresh. Hourly machine aggregates are re-bucketed the same way (for the few zones
-- with a :30/:45 offset, the hour that straddles local midnight counts to the day it
-- starts in). Dead letters have no clinic and stay in UTC days.
--
-- Views keep their names, columns and types (dashboards, report, clinic/ops views).

-- ---------------------------------------------------------------- the zone
-- pg_timezone_names lists the tz database the server knows (it reads the directory: a few
-- milliseconds), so the default 'UTC' is accepted without looking.
CREATE FUNCTION sledfleet.is_time_zone(p_name text) RETURNS boolean
LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$
    SELECT CASE WHEN p_name = 'UTC' THEN true
                ELSE EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = p_name) END
$$;

ALTER TABLE sledfleet.clinics ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC'
    CONSTRAINT clinics_time_zone_iana CHECK (sledfleet.is_time_zone(time_zone));
ALTER TABLE sledfleet.clinics ADD COLUMN time_zone_updated_at timestamptz;

-- Adherence rows name the zone their week was counted in (stream/records.py Adherence).
ALTER TABLE sledfleet.adherence_weekly ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC';

-- ---------------------------------------------------------------- 15-minute aggregates
CREATE MATERIALIZED VIEW sledfleet.agg_patient_15m
-- [timescale]
WITH (timescaledb.continuous, timescaledb.materialized_only = false)
-- [end]
AS SELECT
-- [timescale]
    time_bucket(INTERVAL '15 minutes', ts) AS bucket,
-- [postgres]
    date_bin(INTERVAL '15 minutes', ts, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket,
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
    sum(mean_mcv_ms) AS mcv_sum,
    count(mean_mcv_ms) AS mcv_n,
    sum(mean_asi_pct) AS asi_sum,
    count(mean_asi_pct) AS asi_n,
    max(max_velocity_loss_pct) AS max_velocity_loss_pct,
    max(max_load_kg) AS max_load_kg,
    sum(e1rm_kg) AS e1rm_sum,
    count(e1rm_kg) AS e1rm_n
FROM sledfleet.sessions
WHERE patient_id IS NOT NULL
GROUP BY 1, 2, 3
-- [timescale]
WITH NO DATA;
-- [postgres]
WITH DATA;
CREATE UNIQUE INDEX agg_patient_15m_key ON sledfleet.agg_patient_15m (bucket, clinic_id, patient_id);
-- [end]
CREATE INDEX agg_patient_15m_patient_idx ON sledfleet.agg_patient_15m (patient_id, bucket);
CREATE INDEX agg_patient_15m_clinic_idx ON sledfleet.agg_patient_15m (clinic_id, bucket);

CREATE MATERIALIZED VIEW sledfleet.agg_clinic_15m
-- [timescale]
WITH (timescaledb.continuous, timescaledb.materialized_only = false)
-- [end]
AS SELECT
-- [timescale]
    time_bucket(INTERVAL '15 minutes', ts) AS bucket,
-- [postgres]
    date_bin(INTERVAL '15 minutes', ts, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket,
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
CREATE UNIQUE INDEX agg_clinic_15m_key ON sledfleet.agg_clinic_15m (bucket, clinic_id);
-- [end]
CREATE INDEX agg_clinic_15m_clinic_idx ON sledfleet.agg_clinic_15m (clinic_id, bucket);

-- ---------------------------------------------------------------- views, clinic-local
CREATE OR REPLACE VIEW sledfleet.v_patient_daily AS
SELECT date_trunc('day', a.bucket, coalesce(c.time_zone, 'UTC')) AS day, a.clinic_id,
       a.patient_id, sum(a.sessions)::bigint AS sessions,
       sum(a.completed_sessions)::bigint AS completed_sessions, sum(a.sets)::bigint AS sets,
       sum(a.reps)::bigint AS reps, sum(a.partial_reps)::bigint AS partial_reps,
       sum(a.volume_load_kg) AS volume_load_kg, sum(a.work_j) AS work_j,
       sum(a.duration_s) AS duration_s,
       sum(a.mcv_sum) / nullif(sum(a.mcv_n), 0) AS mean_mcv_ms,
       sum(a.asi_sum) / nullif(sum(a.asi_n), 0) AS mean_asi_pct,
       max(a.max_velocity_loss_pct) AS max_velocity_loss_pct, max(a.max_load_kg) AS max_load_kg,
       sum(a.e1rm_sum) / nullif(sum(a.e1rm_n), 0) AS e1rm_kg
FROM sledfleet.agg_patient_15m a
LEFT JOIN sledfleet.clinics c ON c.clinic_id = a.clinic_id
GROUP BY 1, 2, 3;

CREATE OR REPLACE VIEW sledfleet.v_patient_weekly AS
SELECT w.week, to_char(w.week AT TIME ZONE w.time_zone, 'IYYY-"W"IW') AS iso_week,
       w.clinic_id, w.patient_id, w.sessions, w.completed_sessions, w.sets, w.reps,
       w.partial_reps, w.volume_load_kg, w.work_j, w.duration_s, w.mean_mcv_ms,
       w.mean_asi_pct, w.max_velocity_loss_pct, w.max_load_kg, w.e1rm_kg
FROM (
    SELECT date_trunc('week', a.bucket, coalesce(c.time_zone, 'UTC')) AS week,
           coalesce(c.time_zone, 'UTC') AS time_zone, a.clinic_id, a.patient_id,
           sum(a.sessions)::bigint AS sessions,
           sum(a.completed_sessions)::bigint AS completed_sessions,
           sum(a.sets)::bigint AS sets, sum(a.reps)::bigint AS reps,
           sum(a.partial_reps)::bigint AS partial_reps,
           sum(a.volume_load_kg) AS volume_load_kg, sum(a.work_j) AS work_j,
           sum(a.duration_s) AS duration_s,
           sum(a.mcv_sum) / nullif(sum(a.mcv_n), 0) AS mean_mcv_ms,
           sum(a.asi_sum) / nullif(sum(a.asi_n), 0) AS mean_asi_pct,
           max(a.max_velocity_loss_pct) AS max_velocity_loss_pct,
           max(a.max_load_kg) AS max_load_kg,
           sum(a.e1rm_sum) / nullif(sum(a.e1rm_n), 0) AS e1rm_kg
    FROM sledfleet.agg_patient_15m a
    LEFT JOIN sledfleet.clinics c ON c.clinic_id = a.clinic_id
    GROUP BY 1, 2, 3, 4
) w;

CREATE OR REPLACE VIEW sledfleet.v_clinic_daily AS
SELECT d.day, d.clinic_id, d.sessions, d.unattributed_sessions, d.completed_sessions,
       d.sets, d.reps, d.partial_reps, d.volume_load_kg, d.work_j, d.duration_s,
       coalesce(p.active_patients, 0) AS active_patients
FROM (
    SELECT date_trunc('day', a.bucket, coalesce(c.time_zone, 'UTC')) AS day, a.clinic_id,
           sum(a.sessions)::bigint AS sessions,
           sum(a.unattributed_sessions)::bigint AS unattributed_sessions,
           sum(a.completed_sessions)::bigint AS completed_sessions,
           sum(a.sets)::bigint AS sets, sum(a.reps)::bigint AS reps,
           sum(a.partial_reps)::bigint AS partial_reps,
           sum(a.volume_load_kg) AS volume_load_kg, sum(a.work_j) AS work_j,
           sum(a.duration_s) AS duration_s
    FROM sledfleet.agg_clinic_15m a
    LEFT JOIN sledfleet.clinics c ON c.clinic_id = a.clinic_id
    GROUP BY 1, 2
) d
LEFT JOIN (
    SELECT date_trunc('day', a.bucket, coalesce(c.time_zone, 'UTC')) AS day, a.clinic_id,
           count(DISTINCT a.patient_id) AS active_patients
    FROM sledfleet.agg_patient_15m a
    LEFT JOIN sledfleet.clinics c ON c.clinic_id = a.clinic_id
    GROUP BY 1, 2
) p ON p.day = d.day AND p.clinic_id = d.clinic_id;

CREATE OR REPLACE VIEW sledfleet.v_patient_load_weekly AS
SELECT date_trunc('week', r.ts, coalesce(c.time_zone, 'UTC')) AS week,
       r.clinic_id, r.patient_id,
       (round(r.load_kg / 2.5) * 2.5)::double precision AS load_kg,
       count(*) AS reps,
       avg(r.mcv_ms) AS mean_mcv_ms,
       avg(r.mean_power_w) AS mean_power_w,
       max(r.peak_power_w) AS peak_power_w,
       avg(r.asi_pct) AS mean_asi_pct,
       avg(r.rom_mm) AS mean_rom_mm,
       avg(r.concentric_s) AS mean_concentric_s,
       avg(r.eccentric_s) AS mean_eccentric_s
FROM sledfleet.reps r
LEFT JOIN sledfleet.clinics c ON c.clinic_id = r.clinic_id
WHERE r.valid AND r.patient_id IS NOT NULL
GROUP BY 1, 2, 3, 4;

CREATE OR REPLACE VIEW sledfleet.v_alerts_daily AS
SELECT date_trunc('day', a.ts, coalesce(c.time_zone, 'UTC')) AS day,
       a.clinic_id, a.rule, a.severity, count(*) AS alerts
FROM sledfleet.alerts a
LEFT JOIN sledfleet.clinics c ON c.clinic_id = a.clinic_id
GROUP BY 1, 2, 3, 4;

-- status counters are cumulative per machine: the day's highest value per machine
CREATE OR REPLACE VIEW sledfleet.v_data_quality AS
SELECT day, clinic_id,
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
    SELECT date_trunc('day', s.bucket, coalesce(c.time_zone, 'UTC')) AS day,
           s.clinic_id, s.machine_id, true AS has_status,
           max(s.frames) AS frames, max(s.frames_missing) AS frames_missing,
           max(s.frames_replayed) AS frames_replayed, max(s.frames_duplicate) AS frames_duplicate,
           max(s.edge_dropped) AS edge_dropped,
           max(s.max_abs_clock_offset_ms) AS max_abs_clock_offset_ms,
           NULL::bigint AS reps, NULL::bigint AS replayed_reps, NULL::bigint AS dropout_samples
    FROM sledfleet.agg_machine_status_hourly s
    LEFT JOIN sledfleet.clinics c ON c.clinic_id = s.clinic_id
    GROUP BY 1, 2, 3
    UNION ALL
    SELECT date_trunc('day', h.bucket, coalesce(c.time_zone, 'UTC')),
           h.clinic_id, h.machine_id, false,
           NULL, NULL, NULL, NULL, NULL, NULL,
           sum(h.reps)::bigint, sum(h.replayed_reps)::bigint, sum(h.dropout_samples)::bigint
    FROM sledfleet.agg_machine_hourly h
    LEFT JOIN sledfleet.clinics c ON c.clinic_id = h.clinic_id
    GROUP BY 1, 2, 3
) per_machine
GROUP BY day, clinic_id;

CREATE OR REPLACE VIEW sledfleet.v_outcomes AS
SELECT (o.measured_on::timestamp AT TIME ZONE coalesce(c.time_zone, 'UTC')) AS measured_at,
       o.measured_on, o.clinic_id, o.patient_id, o.test, o.value, o.unit, o.note
FROM sledfleet.outcomes o
LEFT JOIN sledfleet.clinics c ON c.clinic_id = o.clinic_id;

-- New trailing columns: the zone of each clinic, and of each adherence row.
CREATE OR REPLACE VIEW sledfleet.v_clinics AS
SELECT c.clinic_id, c.name, c.first_seen,
       (SELECT count(*) FROM sledfleet.machines m WHERE m.clinic_id = c.clinic_id) AS machines,
       (SELECT count(*) FROM sledfleet.patients p WHERE p.clinic_id = c.clinic_id) AS patients,
       c.time_zone
FROM sledfleet.clinics c;
CREATE OR REPLACE VIEW clinic.v_clinics WITH (security_barrier) AS
SELECT * FROM sledfleet.v_clinics
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);
CREATE OR REPLACE VIEW ops.v_clinics AS SELECT * FROM sledfleet.v_clinics;

CREATE OR REPLACE VIEW sledfleet.v_patient_adherence AS
SELECT week_start, iso_week, clinic_id, patient_id, prescription_id, prescribed, attended,
       completed, adherence, compliance, relative_compliance, rolling4_prescribed,
       rolling4_attended, rolling4_completed, rolling4_adherence, rolling4_compliance,
       time_zone
FROM sledfleet.adherence_weekly;
CREATE OR REPLACE VIEW clinic.v_patient_adherence WITH (security_barrier) AS
SELECT * FROM sledfleet.v_patient_adherence
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);

-- ---------------------------------------------------------------- retire the UTC-day aggregates
-- (0007's UTC-day expression indexes; on TimescaleDB they live on the materialization table)
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT schemaname, indexname FROM pg_indexes WHERE indexname IN
        ('agg_machine_status_hourly_clinic_day_idx', 'agg_machine_hourly_clinic_day_idx')
    LOOP
        EXECUTE format('DROP INDEX %I.%I', r.schemaname, r.indexname);
    END LOOP;
END $$;
DROP MATERIALIZED VIEW sledfleet.agg_patient_weekly;
DROP MATERIALIZED VIEW sledfleet.agg_patient_daily;
DROP MATERIALIZED VIEW sledfleet.agg_clinic_daily;
DROP MATERIALIZED VIEW sledfleet.agg_machine_daily;
DROP MATERIALIZED VIEW sledfleet.agg_machine_status_daily;
DELETE FROM sledfleet.aggregates WHERE name IN ('agg_patient_daily', 'agg_patient_weekly',
    'agg_clinic_daily', 'agg_machine_daily', 'agg_machine_status_daily');
INSERT INTO sledfleet.aggregates VALUES
    ('agg_patient_15m', 1, INTERVAL '70 days', INTERVAL '1 hour', INTERVAL '15 minutes'),
    ('agg_clinic_15m', 3, INTERVAL '35 days', INTERVAL '1 hour', INTERVAL '15 minutes');

-- [timescale]
SELECT add_continuous_aggregate_policy(format('sledfleet.%I', name)::regclass,
    start_offset => start_offset, end_offset => end_offset, schedule_interval => schedule)
FROM sledfleet.aggregates WHERE name IN ('agg_patient_15m', 'agg_clinic_15m');
-- [end]
