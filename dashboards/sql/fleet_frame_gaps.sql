-- format: time_series
-- columns: time:time, metric:text, frames_missing:num
SELECT day AS "time", clinic_id AS metric, frames_missing
FROM v_data_quality
WHERE clinic_id IN ($clinic) AND $__timeFilter(day)
ORDER BY 1, 2
