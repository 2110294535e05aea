-- format: time_series
-- columns: time:time, metric:text, reps:num
SELECT hour AS "time", machine_id AS metric, reps
FROM v_machine_hourly
WHERE clinic_id IN ($clinic) AND machine_id IN ($machine) AND $__timeFilter(hour)
ORDER BY 1, 2
