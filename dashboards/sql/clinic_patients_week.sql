-- format: table
-- columns: patient_id:text, iso_week:text, adherence:num, compliance:num, rolling4_adherence:num, rolling4_compliance:num, days_since_last_session:num, alerts:num, mean_asi_pct_4w:num
-- One row per patient: the latest ISO week up to the end of the range, days since the last
-- session, alerts raised in the range, mean asymmetry over the 4 weeks before the end.
SELECT p.patient_id,
       w.iso_week,
       w.adherence,
       w.compliance,
       w.rolling4_adherence,
       w.rolling4_compliance,
       extract(epoch FROM $__timeTo()::timestamptz - s.last_ts) / 86400.0 AS days_since_last_session,
       a.alerts,
       s.mean_asi_pct_4w
FROM v_patients AS p
LEFT JOIN LATERAL (
    SELECT iso_week, adherence, compliance, rolling4_adherence, rolling4_compliance
    FROM v_patient_adherence AS x
    WHERE x.patient_id = p.patient_id AND x.week_start <= $__timeTo()::date
    ORDER BY x.week_start DESC
    LIMIT 1
) AS w ON true
LEFT JOIN LATERAL (
    SELECT max(start_time) AS last_ts,
           avg(mean_asi_pct) FILTER (
               WHERE start_time > $__timeTo()::timestamptz - INTERVAL '28 days') AS mean_asi_pct_4w
    FROM v_sessions AS se
    WHERE se.patient_id = p.patient_id AND se.start_time <= $__timeTo()
) AS s ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS alerts
    FROM v_alerts AS al
    WHERE al.patient_id = p.patient_id AND $__timeFilter(al.ts)
) AS a ON true
WHERE p.clinic_id IN ($clinic) AND p.patient_id IN ($patient)
ORDER BY w.rolling4_adherence NULLS FIRST, p.patient_id
