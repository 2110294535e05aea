-- format: table
-- columns: prescription_id:text, sessions_per_week:num, sets:num, reps:num, load_kg:num, max_velocity_loss_pct:num, start_date:date, end_date:date
SELECT prescription_id, sessions_per_week, sets, reps, load_kg, max_velocity_loss_pct,
       start_date, end_date
FROM v_prescriptions
WHERE patient_id = '$patient' AND start_date <= $__timeTo()::date
ORDER BY start_date DESC
LIMIT 1
