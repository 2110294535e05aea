-- One SQL definition per number the patient report and the patient dashboard show
-- (docs/report.md, "Definitions"). Both read these views through dashboards/sql/*.sql, so a
-- number cannot mean one thing in the report and another in Grafana.
--
-- Calendars are the clinic's: sledfleet.clinics.time_zone (IANA name, migration 0010; the
-- ALTER below is a no-op after it and keeps this file valid on its own).

ALTER TABLE sledfleet.clinics ADD COLUMN IF NOT EXISTS time_zone text NOT NULL DEFAULT 'UTC';

-- ---------------------------------------------------------------- care period
-- When the patient's care began: the first prescription's start date (clinic midnight) or
-- the first session, whichever is earlier. A report or dashboard period never starts
-- before it, so no lapse or empty week is shown from before the patient existed.
CREATE VIEW sledfleet.v_patient_care AS
SELECT p.patient_id, p.clinic_id, c.time_zone, r.first_prescription_date, s.first_session_at,
       s.last_session_at,
       least(r.first_prescription_date::timestamp AT TIME ZONE c.time_zone, s.first_session_at)
           AS care_start
FROM sledfleet.patients p
JOIN sledfleet.clinics c ON c.clinic_id = p.clinic_id
LEFT JOIN LATERAL (
    SELECT min(start_date) AS first_prescription_date
    FROM sledfleet.prescriptions x WHERE x.patient_id = p.patient_id
) r ON true
LEFT JOIN LATERAL (
    SELECT min(ts) AS first_session_at, max(ts) AS last_session_at
    FROM sledfleet.sessions x WHERE x.patient_id = p.patient_id
) s ON true;

-- ---------------------------------------------------------------- compliance per session
-- DOMAIN: a session is completed as prescribed when at least the prescribed number of
-- sets reached the prescribed reps at the prescribed load (0.5 kg tolerance, as
-- stream/core/adherence.py LOAD_TOLERANCE_KG) AND, where the prescription sets a maximum
-- velocity loss, stayed within it. Warm-up sets below the load neither count nor fail it.
-- The prescription is the session's own, else the one active on the session's local date.
-- not_as_prescribed_reason says why (NULL when as prescribed or without a prescription).
CREATE VIEW sledfleet.v_session_compliance AS
WITH s AS (
    SELECT s.ts AS start_time, s.session_id, s.clinic_id, s.machine_id, s.patient_id,
           c.time_zone, (s.ts AT TIME ZONE c.time_zone)::date AS local_date,
           coalesce(s.prescription_id, (
               SELECT r.prescription_id FROM sledfleet.prescriptions r
               WHERE r.patient_id = s.patient_id
                 AND r.start_date <= (s.ts AT TIME ZONE c.time_zone)::date
                 AND (r.end_date IS NULL OR r.end_date >= (s.ts AT TIME ZONE c.time_zone)::date)
               ORDER BY r.start_date DESC, r.prescription_id DESC LIMIT 1)) AS prescription_id
    FROM sledfleet.sessions s
    JOIN sledfleet.clinics c ON c.clinic_id = s.clinic_id
    WHERE s.patient_id IS NOT NULL
), k AS (
    SELECT s.*, r.sets AS rx_sets, r.reps AS rx_reps, r.load_kg AS rx_load_kg,
           r.max_velocity_loss_pct AS rx_max_velocity_loss_pct,
           coalesce(n.sets_done, 0) AS sets_done,
           coalesce(n.sets_at_load, 0) AS sets_at_load,
           coalesce(n.sets_vl_over, 0) AS sets_vl_over,
           n.max_vl_at_load_pct
    FROM s
    LEFT JOIN sledfleet.prescriptions r ON r.prescription_id = s.prescription_id
    LEFT JOIN LATERAL (
        SELECT count(*) AS sets_done,
               count(*) FILTER (WHERE st.reps >= r.reps AND st.load_kg >= r.load_kg - 0.5)
                   AS sets_at_load,
               count(*) FILTER (WHERE st.reps >= r.reps AND st.load_kg >= r.load_kg - 0.5
                                  AND st.velocity_loss_pct > r.max_velocity_loss_pct)
                   AS sets_vl_over,
               max(st.velocity_loss_pct) FILTER (WHERE st.load_kg >= r.load_kg - 0.5)
                   AS max_vl_at_load_pct
        FROM sledfleet.sets st WHERE st.session_id = s.session_id
    ) n ON true
)
SELECT start_time, session_id, clinic_id, machine_id, patient_id, time_zone, local_date,
       prescription_id, rx_sets, rx_reps, rx_load_kg, rx_max_velocity_loss_pct, sets_done,
       sets_at_load, sets_vl_over, max_vl_at_load_pct,
       CASE WHEN prescription_id IS NULL OR rx_sets IS NULL THEN NULL
            ELSE sets_at_load - sets_vl_over >= rx_sets END AS as_prescribed,
       CASE WHEN prescription_id IS NULL OR rx_sets IS NULL THEN 'no prescription active'
            WHEN sets_at_load - sets_vl_over >= rx_sets THEN NULL
            ELSE concat_ws('; ',
                CASE WHEN sets_at_load < rx_sets THEN
                    format('%s of %s sets reached %s reps at %s kg', sets_at_load, rx_sets,
                           rx_reps, rx_load_kg) END,
                CASE WHEN sets_vl_over > 0 THEN
                    format('velocity loss above %s %% in %s set(s) (up to %s %%)',
                           rx_max_velocity_loss_pct, sets_vl_over,
                           round(max_vl_at_load_pct::numeric, 0)) END)
       END AS reason
FROM k;

-- ---------------------------------------------------------------- weekly adherence
-- Prescribed and attended per ISO week are the stream's (sledfleet.adherence_weekly, the
-- same numbers the lapse and low-adherence alerts use); completed, compliance and the
-- rolling compliance are recounted from v_session_compliance so they follow the domain
-- definition above. Same columns as before, so every reader keeps working.
CREATE OR REPLACE VIEW sledfleet.v_patient_adherence AS
SELECT a.week_start, a.iso_week, a.clinic_id, a.patient_id, a.prescription_id, a.prescribed,
       a.attended, w.completed,
       a.adherence,
       w.completed::double precision / nullif(a.prescribed, 0) AS compliance,
       w.completed::double precision / nullif(a.attended, 0) AS relative_compliance,
       a.rolling4_prescribed, a.rolling4_attended, w.rolling4_completed,
       a.rolling4_adherence,
       w.rolling4_completed::double precision / nullif(a.rolling4_prescribed, 0)
           AS rolling4_compliance,
       a.time_zone
FROM sledfleet.adherence_weekly a
JOIN LATERAL (
    SELECT (count(*) FILTER (WHERE c.as_prescribed AND c.local_date >= a.week_start
                                AND c.local_date < a.week_start + 7))::integer AS completed,
           (count(*) FILTER (WHERE c.as_prescribed))::integer AS rolling4_completed
    FROM sledfleet.v_session_compliance c
    WHERE c.patient_id = a.patient_id
      AND c.local_date >= a.week_start - 21 AND c.local_date < a.week_start + 7
) w ON true;

-- ---------------------------------------------------------------- gaps and lapses
-- Gaps without a session, only inside the patient's prescription windows (merged; a window
-- runs from start_date to end_date inclusive, clinic-local, or to now when open-ended).
-- A gap is bounded by sessions, the window's start ('prescription start'), its end
-- ('prescription end') or now ('now': still going on). Callers keep the gaps longer than
-- LAPSE_DAYS (dashboards/thresholds.py): there is no lapse before care or outside a
-- prescription.
CREATE VIEW sledfleet.v_patient_gaps AS
WITH win AS (
    SELECT x.patient_id, x.clinic_id, x.time_zone, unnest(x.windows) AS w
    FROM (
        SELECT r.patient_id, r.clinic_id, c.time_zone,
               range_agg(tstzrange(r.start_date::timestamp AT TIME ZONE c.time_zone,
                                   (r.end_date + 1)::timestamp AT TIME ZONE c.time_zone))
                   AS windows
        FROM sledfleet.prescriptions r
        JOIN sledfleet.clinics c ON c.clinic_id = r.clinic_id
        GROUP BY r.patient_id, r.clinic_id, c.time_zone
    ) x
), points AS (
    SELECT patient_id, clinic_id, time_zone, w, lower(w) AS t, 'prescription start' AS kind
    FROM win WHERE lower(w) < now()
    UNION ALL
    SELECT win.patient_id, win.clinic_id, win.time_zone, win.w, s.ts, 'session'
    FROM win JOIN sledfleet.sessions s ON s.patient_id = win.patient_id AND win.w @> s.ts
    UNION ALL
    SELECT patient_id, clinic_id, time_zone, w,
           CASE WHEN upper(w) <= now() THEN upper(w) ELSE now() END,
           CASE WHEN upper(w) <= now() THEN 'prescription end' ELSE 'now' END
    FROM win WHERE lower(w) < now()
), gaps AS (
    SELECT patient_id, clinic_id, time_zone,
           lag(t) OVER (PARTITION BY patient_id, w ORDER BY t, kind DESC) AS gap_start,
           lag(kind) OVER (PARTITION BY patient_id, w ORDER BY t, kind DESC) AS start_kind,
           t AS gap_end, kind AS end_kind
    FROM points
)
SELECT patient_id, clinic_id, time_zone, gap_start, start_kind, gap_end, end_kind,
       extract(epoch FROM gap_end - gap_start)::double precision / 86400 AS days,
       end_kind = 'now' AS ongoing
FROM gaps
WHERE gap_start IS NOT NULL AND gap_end > gap_start;

-- ---------------------------------------------------------------- left / right force
-- Per session, from its valid reps: mean concentric force of each leg, recovered from the
-- rep's total mean force F and ASI = (R - L) / max(R, L) × 100: the stronger side is
-- F / (2 - |ASI|/100), the weaker one the rest. weaker_side: the side with the lower mean.
CREATE VIEW sledfleet.v_session_sides AS
SELECT session_id, clinic_id, patient_id, min(ts) AS start_time, count(*) AS reps,
       avg(left_n) AS mean_left_force_n, avg(right_n) AS mean_right_force_n,
       avg(asi_pct) AS mean_asi_pct,
       CASE WHEN avg(left_n) < avg(right_n) THEN 'left'
            WHEN avg(right_n) < avg(left_n) THEN 'right' ELSE 'neither' END AS weaker_side
FROM (
    SELECT ts, session_id, clinic_id, patient_id, asi_pct,
           CASE WHEN asi_pct >= 0 THEN mean_force_n - mean_force_n / (2 - asi_pct / 100)
                ELSE mean_force_n / (2 + asi_pct / 100) END AS left_n,
           CASE WHEN asi_pct >= 0 THEN mean_force_n / (2 - asi_pct / 100)
                ELSE mean_force_n - mean_force_n / (2 + asi_pct / 100) END AS right_n
    FROM sledfleet.reps
    WHERE valid AND asi_pct IS NOT NULL AND patient_id IS NOT NULL AND abs(asi_pct) < 100
) r
GROUP BY session_id, clinic_id, patient_id;

-- ---------------------------------------------------------------- effort and symptom notes
-- 'patient_note' events (edge/contract.py): RPE (Borg CR10), fatigue (0-10), symptoms and a
-- suspected-relapse flag, recorded at check-in or after a session (`sledfleet note add`).
CREATE VIEW sledfleet.v_patient_notes AS
SELECT e.ts AS noted_at, e.event_id, e.clinic_id, e.machine_id, e.patient_id, e.session_id,
       p.j ->> 'phase' AS phase,
       (p.j ->> 'rpe')::double precision AS rpe,
       (p.j ->> 'fatigue')::double precision AS fatigue,
       p.j ->> 'symptoms' AS symptoms,
       coalesce((p.j ->> 'relapse_suspected')::boolean, false) AS relapse_suspected,
       p.j ->> 'recorded_by' AS recorded_by
FROM sledfleet.machine_events e
-- the sink's COPY stores the event as a JSON string holding the object: unwrap it
CROSS JOIN LATERAL (
    SELECT CASE WHEN jsonb_typeof(e.payload) = 'string' THEN (e.payload #>> '{}')::jsonb
                ELSE e.payload END AS j
) p
WHERE e.type = 'patient_note' AND e.patient_id IS NOT NULL;
CREATE INDEX machine_events_patient_note_idx ON sledfleet.machine_events (patient_id, ts)
    WHERE type = 'patient_note';

-- ---------------------------------------------------------------- clinic roles
CREATE VIEW clinic.v_patient_care WITH (security_barrier) AS
SELECT * FROM sledfleet.v_patient_care
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);
CREATE VIEW clinic.v_session_compliance WITH (security_barrier) AS
SELECT * FROM sledfleet.v_session_compliance
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);
CREATE VIEW clinic.v_patient_gaps WITH (security_barrier) AS
SELECT * FROM sledfleet.v_patient_gaps
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);
CREATE VIEW clinic.v_session_sides WITH (security_barrier) AS
SELECT * FROM sledfleet.v_session_sides
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);
CREATE VIEW clinic.v_patient_notes WITH (security_barrier) AS
SELECT * FROM sledfleet.v_patient_notes
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);
