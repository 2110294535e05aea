-- format: time_series
-- columns: time:time, metric:text, frames_missing:num
SELECT hour AS "time", machine_id AS metric, frames_missing
FROM v_machine_status_hourly
WHERE clinic_id IN ($clinic) AND machine_id IN ($machine) AND $__timeFilter(hour)
ORDER BY 1, 2
