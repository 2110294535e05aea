-- format: time_series
-- columns: time:time, metric:text, mcv_ms:num
-- Weekly mean concentric velocity of the valid reps at each reference load (storage bins
-- loads to 2.5 kg); faster at the same load means stronger.
SELECT week AS "time", to_char(load_kg, 'FM9990.0') || ' kg' AS metric, mean_mcv_ms AS mcv_ms
FROM v_patient_load_weekly
WHERE patient_id = '$patient' AND $__timeFilter(week)
ORDER BY 1, 2
