-- format: table
-- columns: time:time, machine_id:text, duration_s:num, sets:num, reps:num, partial_reps:num, max_load_kg:num, volume_load_kg:num, mean_mcv_ms:num, max_velocity_loss_pct:num, mean_asi_pct:num, weaker_side:text, e1rm_kg:num, as_prescribed:text
-- as_prescribed (v_session_compliance): yes, "no: <reason>", or "no prescription active".
SELECT s.start_time AS "time", s.machine_id, s.duration_s, s.sets, s.reps, s.partial_reps,
       s.max_load_kg, s.volume_load_kg, s.mean_mcv_ms, s.max_velocity_loss_pct,
       s.mean_asi_pct, y.weaker_side, s.e1rm_kg,
       CASE WHEN k.as_prescribed THEN 'yes'
            WHEN k.as_prescribed IS NULL THEN coalesce(k.reason, 'no prescription active')
            ELSE 'no: ' || k.reason END AS as_prescribed
FROM v_sessions AS s
LEFT JOIN v_session_compliance AS k ON k.session_id = s.session_id
LEFT JOIN v_session_sides AS y ON y.session_id = s.session_id
WHERE s.patient_id = '$patient' AND $__timeFilter(s.start_time)
ORDER BY s.start_time DESC
