-- format: table
-- columns: machine_id:text, model:text, serial:text, agent_version:text, firmware:text, config_version:num, online:bool, last_seen:time, seconds_since_seen:num, clock_offset_ms:num, frames:num, frames_missing:num, frames_replayed:num, edge_dropped:num, faults_7d:num, open_alerts:num
SELECT machine_id, model, serial, agent_version, firmware, config_version, online, last_seen,
       seconds_since_seen, clock_offset_ms, frames, frames_missing, frames_replayed,
       edge_dropped, faults_7d, open_alerts
FROM v_fleet_machines
WHERE clinic_id IN ($clinic) AND machine_id IN ($machine)
ORDER BY machine_id
