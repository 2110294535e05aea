-- format: time_series
-- columns: time:time, max_load_kg:num, prescribed_load_kg:num, volume_load_kg:num
-- Per session: the heaviest load used, the load its prescription set, and volume load
-- (sum of load × reps).
SELECT s.start_time AS "time", s.max_load_kg, k.rx_load_kg AS prescribed_load_kg,
       s.volume_load_kg
FROM v_sessions AS s
LEFT JOIN v_session_compliance AS k ON k.session_id = s.session_id
WHERE s.patient_id = '$patient' AND $__timeFilter(s.start_time)
ORDER BY 1
