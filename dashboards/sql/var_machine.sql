-- format: table
-- columns: machine_id:text
SELECT machine_id
FROM v_fleet_machines
WHERE clinic_id IN ($clinic)
ORDER BY 1
