-- format: time_series
-- columns: time:time, sessions:num, reps:num, volume_load_kg:num
SELECT day AS "time", sessions, reps, volume_load_kg
FROM v_patient_daily
WHERE patient_id = '$patient' AND $__timeFilter(day)
ORDER BY 1
