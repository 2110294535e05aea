-- format: time_series
-- columns: time:time, metric:text, mcv_ms:num
-- Weekly mean concentric velocity of the valid reps at the reference load: the load of the
-- patient's current prescription (binned to 2.5 kg as v_patient_load_weekly bins), the same
-- for every patient; faster at the same load means stronger.
SELECT l.week AS "time", to_char(l.load_kg, 'FM9990.0') || ' kg' AS metric,
       l.mean_mcv_ms AS mcv_ms
FROM v_patient_load_weekly AS l
JOIN (
    SELECT round(load_kg / 2.5) * 2.5 AS ref_kg
    FROM v_prescriptions
    WHERE patient_id = '$patient' AND start_date <= $__timeTo()::date
    ORDER BY start_date DESC, prescription_id DESC
    LIMIT 1
) AS r ON l.load_kg = r.ref_kg
WHERE l.patient_id = '$patient' AND $__timeFilter(l.week)
ORDER BY 1
