-- format: table
-- columns: time_zone:text, care_start:time, period_start:time, period_end:time, weeks:num, prescribed:num, attended:num, completed:num, adherence:num, compliance:num, iso_week:text, week_adherence:num, week_compliance:num, rolling4_adherence:num, rolling4_compliance:num, last_session:time, days_since_last_session:num, sessions:num, asi_pct:num, weaker_side:text, open_alerts:num
-- One row for the patient (none for an unknown or invisible patient). The period runs from
-- the later of the range start and the patient's care start (first prescription or first
-- session) to the range end. Adherence and compliance: sums over the ISO weeks (clinic
-- time zone) overlapping the period, from v_patient_adherence. The latest week is the last
-- one starting before the range end. Asymmetry: the latest session's, weaker side from its
-- reps. Open alerts: unacknowledged, raised within the last 14 days.
SELECT p.time_zone, p.care_start, p.period_start, p.period_end, a.weeks, a.prescribed,
       a.attended, a.completed,
       a.attended::double precision / nullif(a.prescribed, 0) AS adherence,
       a.completed::double precision / nullif(a.prescribed, 0) AS compliance,
       w.iso_week, w.adherence AS week_adherence, w.compliance AS week_compliance,
       w.rolling4_adherence, w.rolling4_compliance,
       l.last_session,
       date_part('epoch', p.period_end - l.last_session) / 86400.0 AS days_since_last_session,
       n.sessions, s.asi_pct, s.weaker_side, o.open_alerts
FROM (
    SELECT c.time_zone, c.care_start,
           least(greatest($__timeFrom()::timestamptz, c.care_start), $__timeTo()::timestamptz)
               AS period_start,
           $__timeTo()::timestamptz AS period_end
    FROM v_patient_care c
    WHERE c.patient_id = '$patient'
) AS p
LEFT JOIN LATERAL (
    SELECT count(*) AS weeks, sum(prescribed) AS prescribed, sum(attended) AS attended,
           sum(completed) AS completed
    FROM v_patient_adherence
    WHERE patient_id = '$patient'
      AND week_start > (p.period_start AT TIME ZONE p.time_zone)::date - 7
      AND week_start <= (p.period_end AT TIME ZONE p.time_zone)::date
) AS a ON true
LEFT JOIN LATERAL (
    SELECT iso_week, adherence, compliance, rolling4_adherence, rolling4_compliance
    FROM v_patient_adherence
    WHERE patient_id = '$patient' AND week_start <= (p.period_end AT TIME ZONE p.time_zone)::date
    ORDER BY week_start DESC
    LIMIT 1
) AS w ON true
LEFT JOIN LATERAL (
    SELECT max(start_time) AS last_session
    FROM v_sessions
    WHERE patient_id = '$patient' AND start_time <= p.period_end
) AS l ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS sessions
    FROM v_sessions
    WHERE patient_id = '$patient' AND start_time >= p.period_start
      AND start_time <= p.period_end
) AS n ON true
LEFT JOIN LATERAL (
    SELECT x.mean_asi_pct AS asi_pct, y.weaker_side
    FROM v_sessions x
    LEFT JOIN v_session_sides y ON y.session_id = x.session_id
    WHERE x.patient_id = '$patient' AND x.start_time <= p.period_end
      AND x.mean_asi_pct IS NOT NULL
    ORDER BY x.start_time DESC
    LIMIT 1
) AS s ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS open_alerts
    FROM v_alerts_open
    WHERE patient_id = '$patient'
) AS o ON true
