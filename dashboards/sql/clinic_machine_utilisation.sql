-- format: table
-- columns: machine_id:text, sessions:num, hours_in_use:num, patients:num
SELECT m.machine_id,
       count(se.session_id) AS sessions,
       coalesce(sum(se.duration_s), 0) / 3600.0 AS hours_in_use,
       count(DISTINCT se.patient_id) AS patients
FROM v_fleet_machines AS m
LEFT JOIN v_sessions AS se
    ON se.machine_id = m.machine_id AND $__timeFilter(se.start_time)
WHERE m.clinic_id IN ($clinic)
GROUP BY m.machine_id
ORDER BY m.machine_id
