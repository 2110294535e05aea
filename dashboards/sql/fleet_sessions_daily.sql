-- format: time_series
-- columns: time:time, metric:text, sessions:num
SELECT day AS "time", clinic_id AS metric, sessions
FROM v_clinic_daily
WHERE clinic_id IN ($clinic) AND $__timeFilter(day)
ORDER BY 1, 2
