-- format: time_series
-- columns: time:time, metric:text, rolling4_adherence:num
SELECT week_start::timestamp AT TIME ZONE 'UTC' AS "time", patient_id AS metric,
       rolling4_adherence
FROM v_patient_adherence
WHERE clinic_id IN ($clinic) AND patient_id IN ($patient) AND $__timeFilter(week_start)
ORDER BY 1, 2
