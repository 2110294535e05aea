-- format: time_series
-- columns: time:time, metric:text, max_abs_clock_offset_ms:num
SELECT day AS "time", clinic_id AS metric, max_abs_clock_offset_ms
FROM v_data_quality
WHERE clinic_id IN ($clinic) AND $__timeFilter(day)
ORDER BY 1, 2
