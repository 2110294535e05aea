-- format: time_series
-- columns: time:time, prescribed:num, attended:num, completed:num, adherence:num, rolling4_adherence:num
SELECT week_start::timestamp AT TIME ZONE 'UTC' AS "time",
       prescribed, attended, completed, adherence, rolling4_adherence
FROM v_patient_adherence
WHERE patient_id = '$patient' AND $__timeFilter(week_start)
ORDER BY 1
