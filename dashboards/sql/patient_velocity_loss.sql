-- format: time_series
-- columns: time:time, velocity_loss_pct:num, prescribed_max_pct:num
-- One point per set; the prescription's allowed velocity loss beside it.
SELECT st.start_time AS "time", st.velocity_loss_pct, p.max_velocity_loss_pct AS prescribed_max_pct
FROM v_sets AS st
LEFT JOIN v_sessions AS se ON se.session_id = st.session_id
LEFT JOIN v_prescriptions AS p ON p.prescription_id = se.prescription_id
WHERE st.patient_id = '$patient' AND $__timeFilter(st.start_time) AND st.velocity_loss_pct IS NOT NULL
ORDER BY 1
