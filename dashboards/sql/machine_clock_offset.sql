-- format: time_series
-- columns: time:time, metric:text, clock_offset_ms:num
SELECT hour AS "time", machine_id AS metric, mean_clock_offset_ms AS clock_offset_ms
FROM v_machine_status_hourly
WHERE clinic_id IN ($clinic) AND machine_id IN ($machine) AND $__timeFilter(hour)
ORDER BY 1, 2
