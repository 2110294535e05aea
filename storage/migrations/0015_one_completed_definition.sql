-- One definition of "completed as prescribed" behind every number a person reads.
--
-- sledfleet.v_session_compliance (0011) is the definition (DOMAIN, docs/report.md): the
-- prescribed sets reached the prescribed reps at the prescribed load AND, where the
-- prescription sets a maximum velocity loss, stayed within it. Until now three readers
-- still counted the stream's own verdict (sets × reps × load only, no velocity loss), so
-- the clinic view and the patient view could disagree on the same week:
--   * v_clinic_adherence.mean_compliance averaged adherence_weekly.compliance;
--   * v_patient_daily / v_patient_weekly / v_clinic_daily.completed_sessions summed
--     sessions.completed_as_prescribed through the 15-minute aggregates;
--   * v_sessions.completed_as_prescribed was the stream's column.
-- Each now counts v_session_compliance. Same view columns, so every reader keeps working;
-- the recount is a scalar subquery, evaluated only when a query asks for that column.
--
-- The stream's verdict stays stored where the stream writes it (sessions.
-- completed_as_prescribed, adherence_weekly.completed and the ratios built on it, the
-- aggregates' completed_sessions): it is the "prescribed dose done" measure, named so by
-- the comments below, used to score the stream against the simulator's truth and shown by
-- no view.

-- ---------------------------------------------------------------- clinic adherence
CREATE OR REPLACE VIEW sledfleet.v_clinic_adherence AS
SELECT s.week_start, s.iso_week, s.clinic_id, s.patients, s.mean_adherence,
       (SELECT avg(a.compliance) FROM sledfleet.v_patient_adherence a
        WHERE a.clinic_id = s.clinic_id AND a.week_start = s.week_start) AS mean_compliance,
       s.mean_rolling4_adherence, s.patients_below_50, s.patients_50_to_75,
       s.patients_75_to_100, s.patients_at_100
FROM sledfleet.clinic_adherence_weekly s;

-- the summary table no longer keeps the stream's compliance mean: nothing reads it
CREATE OR REPLACE FUNCTION sledfleet.refresh_clinic_adherence(p_clinics text[], p_weeks date[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('sledfleet.clinic_adherence'), hashtext(c || w::text))
    FROM unnest(p_clinics, p_weeks) AS u(c, w) ORDER BY c, w;
    DELETE FROM sledfleet.clinic_adherence_weekly s
    USING unnest(p_clinics, p_weeks) AS u(c, w)
    WHERE s.clinic_id = u.c AND s.week_start = u.w;
    INSERT INTO sledfleet.clinic_adherence_weekly (
        clinic_id, week_start, iso_week, patients, mean_adherence, mean_rolling4_adherence,
        patients_below_50, patients_50_to_75, patients_75_to_100, patients_at_100)
    SELECT a.clinic_id, a.week_start, min(a.iso_week), count(*), avg(a.adherence),
           avg(a.rolling4_adherence),
           count(*) FILTER (WHERE a.adherence < 0.5),
           count(*) FILTER (WHERE a.adherence >= 0.5 AND a.adherence < 0.75),
           count(*) FILTER (WHERE a.adherence >= 0.75 AND a.adherence < 1),
           count(*) FILTER (WHERE a.adherence >= 1)
    FROM sledfleet.adherence_weekly a
    JOIN (SELECT DISTINCT c, w FROM unnest(p_clinics, p_weeks) AS u(c, w)) u
      ON a.clinic_id = u.c AND a.week_start = u.w
    GROUP BY a.clinic_id, a.week_start;
END $$;
ALTER TABLE sledfleet.clinic_adherence_weekly DROP COLUMN mean_compliance;

-- ---------------------------------------------------------------- completed sessions per day
CREATE OR REPLACE VIEW sledfleet.v_patient_daily AS
SELECT x.day, x.clinic_id, x.patient_id, x.sessions,
       (SELECT count(*) FROM sledfleet.v_session_compliance k
        WHERE k.patient_id = x.patient_id AND k.as_prescribed
          AND k.start_time >= x.day
          AND k.start_time < (x.day AT TIME ZONE x.time_zone + INTERVAL '1 day')
                             AT TIME ZONE x.time_zone) AS completed_sessions,
       x.sets, x.reps, x.partial_reps, x.volume_load_kg, x.work_j, x.duration_s,
       x.mean_mcv_ms, x.mean_asi_pct, x.max_velocity_loss_pct, x.max_load_kg, x.e1rm_kg
FROM (
    SELECT date_trunc('day', a.bucket, coalesce(c.time_zone, 'UTC')) AS day,
           coalesce(c.time_zone, 'UTC') AS time_zone, a.clinic_id, a.patient_id,
           sum(a.sessions)::bigint AS sessions, sum(a.sets)::bigint AS sets,
           sum(a.reps)::bigint AS reps, sum(a.partial_reps)::bigint AS partial_reps,
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
) x;

CREATE OR REPLACE VIEW sledfleet.v_patient_weekly AS
SELECT w.week, to_char(w.week AT TIME ZONE w.time_zone, 'IYYY-"W"IW') AS iso_week,
       w.clinic_id, w.patient_id, w.sessions,
       (SELECT count(*) FROM sledfleet.v_session_compliance k
        WHERE k.patient_id = w.patient_id AND k.as_prescribed
          AND k.start_time >= w.week
          AND k.start_time < (w.week AT TIME ZONE w.time_zone + INTERVAL '7 days')
                             AT TIME ZONE w.time_zone) AS completed_sessions,
       w.sets, w.reps, w.partial_reps, w.volume_load_kg, w.work_j, w.duration_s,
       w.mean_mcv_ms, w.mean_asi_pct, w.max_velocity_loss_pct, w.max_load_kg, w.e1rm_kg
FROM (
    SELECT date_trunc('week', a.bucket, coalesce(c.time_zone, 'UTC')) AS week,
           coalesce(c.time_zone, 'UTC') AS time_zone, a.clinic_id, a.patient_id,
           sum(a.sessions)::bigint AS sessions,
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
SELECT d.day, c.clinic_id, x.sessions, x.unattributed_sessions,
       (SELECT count(*) FROM sledfleet.v_session_compliance k
        WHERE k.clinic_id = c.clinic_id AND k.as_prescribed
          AND k.start_time >= d.day AND k.start_time < d.next_day) AS completed_sessions,
       x.sets, x.reps, x.partial_reps, x.volume_load_kg, x.work_j, x.duration_s,
       coalesce(p.active_patients, 0) AS active_patients
FROM sledfleet.clinics c
JOIN sledfleet.zone_days d ON d.time_zone = c.time_zone
CROSS JOIN LATERAL (
    SELECT sum(a.sessions)::bigint AS sessions,
           sum(a.unattributed_sessions)::bigint AS unattributed_sessions,
           sum(a.sets)::bigint AS sets, sum(a.reps)::bigint AS reps,
           sum(a.partial_reps)::bigint AS partial_reps,
           sum(a.volume_load_kg) AS volume_load_kg, sum(a.work_j) AS work_j,
           sum(a.duration_s) AS duration_s
    FROM sledfleet.agg_clinic_15m a
    WHERE a.clinic_id = c.clinic_id AND a.bucket >= d.day AND a.bucket < d.next_day
    GROUP BY a.clinic_id
) x
LEFT JOIN LATERAL (
    SELECT count(DISTINCT a.patient_id) AS active_patients
    FROM sledfleet.agg_patient_15m a
    WHERE a.clinic_id = c.clinic_id AND a.bucket >= d.day AND a.bucket < d.next_day
) p ON true;

-- ---------------------------------------------------------------- sessions
CREATE OR REPLACE VIEW sledfleet.v_sessions AS
SELECT s.ts AS start_time, s.end_ts AS end_time, s.session_id, s.clinic_id, s.machine_id,
       s.patient_id, s.prescription_id, s.end_reason, s.sets, s.reps, s.partial_reps,
       s.volume_load_kg, s.work_j, s.mean_asi_pct, s.mean_mcv_ms, s.max_velocity_loss_pct,
       s.duration_s, s.density_j_per_min, s.max_load_kg, s.seat_position,
       s.footplate_position,
       (SELECT k.as_prescribed FROM sledfleet.v_session_compliance k
        WHERE k.session_id = s.session_id) AS completed_as_prescribed,
       s.lv_intercept_ms, s.lv_slope_ms_per_kg, s.e1rm_kg
FROM sledfleet.sessions s;

-- ---------------------------------------------------------------- what the stream stores
COMMENT ON COLUMN sledfleet.sessions.completed_as_prescribed IS
    'The stream''s dose verdict: sets x reps at the prescribed load, velocity loss not '
    'checked. Not compliance: read sledfleet.v_session_compliance.as_prescribed.';
COMMENT ON COLUMN sledfleet.adherence_weekly.completed IS
    'The stream''s dose count (sessions with sets x reps at the prescribed load, velocity '
    'loss not checked). Not compliance: read sledfleet.v_patient_adherence.completed.';
COMMENT ON COLUMN sledfleet.adherence_weekly.compliance IS
    'completed / prescribed on the stream''s dose count: see v_patient_adherence.compliance.';
COMMENT ON COLUMN sledfleet.adherence_weekly.relative_compliance IS
    'completed / attended on the stream''s dose count: see v_patient_adherence.';
COMMENT ON COLUMN sledfleet.adherence_weekly.rolling4_completed IS
    'The stream''s dose count over 4 weeks: see v_patient_adherence.rolling4_completed.';
COMMENT ON COLUMN sledfleet.adherence_weekly.rolling4_compliance IS
    'The stream''s dose ratio over 4 weeks: see v_patient_adherence.rolling4_compliance.';

-- ---------------------------------------------------------------- event payloads
-- The sink stored an event's payload as a JSON string holding the object (binary COPY
-- encoded the already-encoded text once more). storage/rows.py now hands the object
-- itself; unwrap the rows written before, and read the payload as it is.
UPDATE sledfleet.machine_events
SET payload = (payload #>> '{}')::jsonb
WHERE jsonb_typeof(payload) = 'string' AND left(payload #>> '{}', 1) = '{';

CREATE OR REPLACE VIEW sledfleet.v_patient_notes AS
SELECT e.ts AS noted_at, e.event_id, e.clinic_id, e.machine_id, e.patient_id, e.session_id,
       e.payload ->> 'phase' AS phase,
       (e.payload ->> 'rpe')::double precision AS rpe,
       (e.payload ->> 'fatigue')::double precision AS fatigue,
       e.payload ->> 'symptoms' AS symptoms,
       coalesce((e.payload ->> 'relapse_suspected')::boolean, false) AS relapse_suspected,
       e.payload ->> 'recorded_by' AS recorded_by
FROM sledfleet.machine_events e
WHERE e.type = 'patient_note' AND e.patient_id IS NOT NULL;
