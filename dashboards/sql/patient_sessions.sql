-- format: table
-- columns: time:time, machine_id:text, duration_s:num, sets:num, reps:num, partial_reps:num, max_load_kg:num, volume_load_kg:num, mean_mcv_ms:num, max_velocity_loss_pct:num, mean_asi_pct:num, e1rm_kg:num, completed_as_prescribed:bool
SELECT start_time AS "time", machine_id, duration_s, sets, reps, partial_reps, max_load_kg,
       volume_load_kg, mean_mcv_ms, max_velocity_loss_pct, mean_asi_pct, e1rm_kg,
       completed_as_prescribed
FROM v_sessions
WHERE patient_id = '$patient' AND $__timeFilter(start_time)
ORDER BY start_time DESC
