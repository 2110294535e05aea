-- format: table
-- columns: iso_week:text, adherence:num, compliance:num, rolling4_adherence:num, rolling4_compliance:num, days_since_last_session:num, sessions:num
-- One row: the latest ISO week up to the end of the range, days since the last session
-- before the end of the range, and the number of sessions in the range.
SELECT
    w.iso_week,
    w.adherence,
    w.compliance,
    w.rolling4_adherence,
    w.rolling4_compliance,
    extract(epoch FROM $__timeTo()::timestamptz - l.last_ts) / 86400.0 AS days_since_last_session,
    n.sessions
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT iso_week, adherence, compliance, rolling4_adherence, rolling4_compliance
    FROM v_patient_adherence
    WHERE patient_id = '$patient' AND week_start <= $__timeTo()::date
    ORDER BY week_start DESC
    LIMIT 1
) AS w ON true
LEFT JOIN LATERAL (
    SELECT max(start_time) AS last_ts
    FROM v_sessions
    WHERE patient_id = '$patient' AND start_time <= $__timeTo()
) AS l ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS sessions
    FROM v_sessions
    WHERE patient_id = '$patient' AND $__timeFilter(start_time)
) AS n ON true
