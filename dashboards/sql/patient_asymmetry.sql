-- format: time_series
-- columns: time:time, asi_pct:num
-- Session mean asymmetry index: positive = right side stronger, negative = left.
SELECT start_time AS "time", mean_asi_pct AS asi_pct
FROM v_sessions
WHERE patient_id = '$patient' AND $__timeFilter(start_time) AND mean_asi_pct IS NOT NULL
ORDER BY 1
