-- format: time_series
-- columns: time:time, metric:text, mean_power_w:num
SELECT week AS "time", to_char(load_kg, 'FM9990.0') || ' kg' AS metric, mean_power_w
FROM v_patient_load_weekly
WHERE patient_id = '$patient' AND $__timeFilter(week)
ORDER BY 1, 2
