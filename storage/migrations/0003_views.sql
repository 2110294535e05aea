-- Dashboard-facing views: identical names, columns and types on both flavours.
-- Dashboards, the patient report and storage/sql/*.sql read only these (docs/storage.md).
-- Live (non-aggregate) buckets use date_bin with time_bucket's origin, available on both.

CREATE VIEW sledfleet.v_patient_daily AS
SELECT bucket AS day, clinic_id, patient_id, sessions, completed_sessions, sets, reps,
       partial_reps, volume_load_kg, work_j, duration_s, mean_mcv_ms, mean_asi_pct,
       max_velocity_loss_pct, max_load_kg, e1rm_kg
FROM sledfleet.agg_patient_daily;

CREATE VIEW sledfleet.v_patient_weekly AS
SELECT bucket AS week, to_char(bucket AT TIME ZONE 'UTC', 'IYYY-"W"IW') AS iso_week,
       clinic_id, patient_id, sessions, completed_sessions, sets, reps, partial_reps,
       volume_load_kg, work_j, duration_s, mean_mcv_ms, mean_asi_pct, max_velocity_loss_pct,
       max_load_kg, e1rm_kg
FROM sledfleet.agg_patient_weekly;

CREATE VIEW sledfleet.v_clinic_daily AS
SELECT c.bucket AS day, c.clinic_id, c.sessions, c.unattributed_sessions, c.completed_sessions,
       c.sets, c.reps, c.partial_reps, c.volume_load_kg, c.work_j, c.duration_s,
       coalesce(p.active_patients, 0) AS active_patients
FROM sledfleet.agg_clinic_daily c
LEFT JOIN (
    SELECT bucket, clinic_id, count(*) AS active_patients
    FROM sledfleet.agg_patient_daily
    GROUP BY bucket, clinic_id
) p ON p.bucket = c.bucket AND p.clinic_id = c.clinic_id;

CREATE VIEW sledfleet.v_machine_hourly AS
SELECT bucket AS hour, clinic_id, machine_id, reps, valid_reps, replayed_reps, dropout_samples,
       tut_s, work_j, mean_load_kg, mean_mcv_ms
FROM sledfleet.agg_machine_hourly;

CREATE VIEW sledfleet.v_machine_status_hourly AS
SELECT bucket AS hour, clinic_id, machine_id, reports, online_reports, frames, frames_missing,
       frames_replayed, frames_duplicate, edge_dropped, mean_clock_offset_ms,
       max_abs_clock_offset_ms
FROM sledfleet.agg_machine_status_hourly;

CREATE VIEW sledfleet.v_clinics AS
SELECT c.clinic_id, c.name, c.first_seen,
       (SELECT count(*) FROM sledfleet.machines m WHERE m.clinic_id = c.clinic_id) AS machines,
       (SELECT count(*) FROM sledfleet.patients p WHERE p.clinic_id = c.clinic_id) AS patients
FROM sledfleet.clinics c;

CREATE VIEW sledfleet.v_fleet_machines AS
SELECT m.machine_id, m.clinic_id, m.model, m.serial, m.agent_version, m.firmware,
       m.config_version, m.rate_hz, m.clock_offset_ms, coalesce(m.online, false) AS online,
       m.status_at, m.last_seen,
       extract(epoch FROM now() - m.last_seen)::double precision AS seconds_since_seen,
       m.frames, m.frames_missing, m.frames_replayed, m.edge_dropped,
       (SELECT count(*) FROM sledfleet.machine_events e
         WHERE e.machine_id = m.machine_id AND e.type = 'fault'
           AND e.ts > now() - INTERVAL '7 days') AS faults_7d,
       (SELECT count(*) FROM sledfleet.alerts a
         WHERE a.machine_id = m.machine_id AND a.patient_id IS NULL
           AND a.acknowledged_at IS NULL AND a.ts > now() - INTERVAL '14 days') AS open_alerts
FROM sledfleet.machines m;

CREATE VIEW sledfleet.v_machine_events AS
SELECT ts, event_id, machine_id, clinic_id, type, code, detail, session_id, seq
FROM sledfleet.machine_events;

CREATE VIEW sledfleet.v_prescriptions AS
SELECT prescription_id, patient_id, clinic_id, sessions_per_week, sets, reps, load_kg,
       max_velocity_loss_pct, start_date, end_date, seat_position, footplate_position,
       updated_at
FROM sledfleet.prescriptions;

CREATE VIEW sledfleet.v_patients AS
SELECT p.patient_id, p.clinic_id, p.first_seen, s.last_session_at,
       extract(epoch FROM now() - s.last_session_at)::double precision / 86400
           AS days_since_last_session,
       rx.prescription_id, rx.sessions_per_week, rx.sets AS prescribed_sets,
       rx.reps AS prescribed_reps, rx.load_kg AS prescribed_load_kg,
       rx.max_velocity_loss_pct AS prescribed_max_velocity_loss_pct,
       rx.start_date AS prescription_start, rx.end_date AS prescription_end
FROM sledfleet.patients p
LEFT JOIN LATERAL (
    SELECT max(ts) AS last_session_at FROM sledfleet.sessions x WHERE x.patient_id = p.patient_id
) s ON true
LEFT JOIN LATERAL (
    SELECT * FROM sledfleet.prescriptions r
    WHERE r.patient_id = p.patient_id
    ORDER BY r.start_date DESC, r.prescription_id DESC LIMIT 1
) rx ON true;

CREATE VIEW sledfleet.v_sessions AS
SELECT ts AS start_time, end_ts AS end_time, session_id, clinic_id, machine_id, patient_id,
       prescription_id, end_reason, sets, reps, partial_reps, volume_load_kg, work_j,
       mean_asi_pct, mean_mcv_ms, max_velocity_loss_pct, duration_s, density_j_per_min,
       max_load_kg, seat_position, footplate_position, completed_as_prescribed,
       lv_intercept_ms, lv_slope_ms_per_kg, e1rm_kg
FROM sledfleet.sessions;

CREATE VIEW sledfleet.v_sets AS
SELECT ts AS start_time, sledfleet.ns_to_ts(end_ns) AS end_time, session_id, set_no, clinic_id,
       machine_id, patient_id, load_kg, reps, partial_reps, best_mcv_ms, last_mcv_ms,
       mean_mcv_ms, velocity_loss_pct, mean_power_w, peak_power_w, work_j, tut_s, mean_asi_pct
FROM sledfleet.sets;

-- Valid reps per patient, ISO week and load bin (LOAD_BIN_KG = 2.5 kg): MCV and power at
-- reference loads over weeks.
CREATE VIEW sledfleet.v_patient_load_weekly AS
SELECT date_bin(INTERVAL '7 days', ts, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS week,
       clinic_id, patient_id,
       (round(load_kg / 2.5) * 2.5)::double precision AS load_kg,
       count(*) AS reps,
       avg(mcv_ms) AS mean_mcv_ms,
       avg(mean_power_w) AS mean_power_w,
       max(peak_power_w) AS peak_power_w,
       avg(asi_pct) AS mean_asi_pct,
       avg(rom_mm) AS mean_rom_mm,
       avg(concentric_s) AS mean_concentric_s,
       avg(eccentric_s) AS mean_eccentric_s
FROM sledfleet.reps
WHERE valid AND patient_id IS NOT NULL
GROUP BY 1, 2, 3, 4;

CREATE VIEW sledfleet.v_patient_adherence AS
SELECT week_start, iso_week, clinic_id, patient_id, prescription_id, prescribed, attended,
       completed, adherence, compliance, relative_compliance, rolling4_prescribed,
       rolling4_attended, rolling4_completed, rolling4_adherence, rolling4_compliance
FROM sledfleet.adherence_weekly;

-- Per clinic and week, no patient ids: the adherence distribution for operations.
-- Bands: < 0.5, 0.5-0.75 (0.75 = the lapse threshold in docs/domain), 0.75-1, >= 1.
CREATE VIEW sledfleet.v_clinic_adherence AS
SELECT week_start, iso_week, clinic_id,
       count(*) AS patients,
       avg(adherence) AS mean_adherence,
       avg(compliance) AS mean_compliance,
       avg(rolling4_adherence) AS mean_rolling4_adherence,
       count(*) FILTER (WHERE adherence < 0.5) AS patients_below_50,
       count(*) FILTER (WHERE adherence >= 0.5 AND adherence < 0.75) AS patients_50_to_75,
       count(*) FILTER (WHERE adherence >= 0.75 AND adherence < 1) AS patients_75_to_100,
       count(*) FILTER (WHERE adherence >= 1) AS patients_at_100
FROM sledfleet.adherence_weekly
GROUP BY week_start, iso_week, clinic_id;

-- An alert is open while unacknowledged and raised within the last 14 days (ALERT_OPEN_DAYS).
CREATE VIEW sledfleet.v_alerts AS
SELECT ts, window_start, rule, subject_id, clinic_id, patient_id, machine_id, severity, value,
       threshold, message, acknowledged_at,
       (acknowledged_at IS NULL AND ts > now() - INTERVAL '14 days') AS is_open
FROM sledfleet.alerts;

CREATE VIEW sledfleet.v_alerts_open AS
SELECT ts, window_start, rule, subject_id, clinic_id, patient_id, machine_id, severity, value,
       threshold, message
FROM sledfleet.alerts
WHERE acknowledged_at IS NULL AND ts > now() - INTERVAL '14 days';

CREATE VIEW sledfleet.v_alerts_daily AS
SELECT date_bin(INTERVAL '1 day', ts, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS day,
       clinic_id, rule, severity, count(*) AS alerts
FROM sledfleet.alerts
GROUP BY 1, 2, 3, 4;

-- Per clinic and day. Status counters are cumulative per machine: the day's highest value
-- per machine, summed over the clinic's machines.
CREATE VIEW sledfleet.v_data_quality AS
WITH st AS (
    SELECT date_bin(INTERVAL '1 day', hour, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS day,
           clinic_id, machine_id,
           max(frames) AS frames, max(frames_missing) AS frames_missing,
           max(frames_replayed) AS frames_replayed, max(frames_duplicate) AS frames_duplicate,
           max(edge_dropped) AS edge_dropped, max(max_abs_clock_offset_ms) AS max_abs_clock_offset_ms
    FROM sledfleet.v_machine_status_hourly
    GROUP BY 1, 2, 3
), st_day AS (
    SELECT day, clinic_id, count(*) AS machines_reporting,
           sum(frames) AS frames, sum(frames_missing) AS frames_missing,
           sum(frames_replayed) AS frames_replayed, sum(frames_duplicate) AS frames_duplicate,
           sum(edge_dropped) AS edge_dropped,
           max(max_abs_clock_offset_ms) AS max_abs_clock_offset_ms
    FROM st GROUP BY 1, 2
), rp AS (
    SELECT date_bin(INTERVAL '1 day', hour, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS day,
           clinic_id, sum(reps) AS reps, sum(replayed_reps) AS replayed_reps,
           sum(dropout_samples) AS dropout_samples
    FROM sledfleet.v_machine_hourly
    GROUP BY 1, 2
)
SELECT coalesce(st_day.day, rp.day) AS day, coalesce(st_day.clinic_id, rp.clinic_id) AS clinic_id,
       coalesce(st_day.machines_reporting, 0) AS machines_reporting,
       coalesce(st_day.frames, 0)::bigint AS frames,
       coalesce(st_day.frames_missing, 0)::bigint AS frames_missing,
       coalesce(st_day.frames_replayed, 0)::bigint AS frames_replayed,
       coalesce(st_day.frames_duplicate, 0)::bigint AS frames_duplicate,
       coalesce(st_day.edge_dropped, 0)::bigint AS edge_dropped,
       st_day.max_abs_clock_offset_ms,
       coalesce(rp.reps, 0)::bigint AS reps,
       coalesce(rp.replayed_reps, 0)::bigint AS replayed_reps,
       coalesce(rp.dropout_samples, 0)::bigint AS dropout_samples
FROM st_day FULL JOIN rp ON rp.day = st_day.day AND rp.clinic_id = st_day.clinic_id;

CREATE VIEW sledfleet.v_dead_letters_daily AS
SELECT date_bin(INTERVAL '1 day', received_at, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS day,
       source, reason, count(*) AS dead_letters, sum(payload_size)::bigint AS bytes
FROM sledfleet.dead_letters
GROUP BY 1, 2, 3;

CREATE VIEW sledfleet.v_outcomes AS
SELECT (measured_on::timestamp AT TIME ZONE 'UTC') AS measured_at, measured_on, clinic_id,
       patient_id, test, value, unit, note
FROM sledfleet.outcomes;

-- Unqualified names resolve here for the owner; clinic and ops roles get their own
-- search_path (storage/tenants.py), so one dashboard SQL serves every audience.
DO $$ BEGIN
    EXECUTE format('ALTER DATABASE %I SET search_path = sledfleet, public', current_database());
END $$;
