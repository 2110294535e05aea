-- format: table
-- columns: clinic_id:text, online:num, offline:num
SELECT clinic_id,
       count(*) FILTER (WHERE online) AS online,
       count(*) FILTER (WHERE online IS NOT TRUE) AS offline
FROM v_fleet_machines
WHERE clinic_id IN ($clinic)
GROUP BY clinic_id
ORDER BY clinic_id
